"""The agent loop on ScriptedEngine: events, history, exact appends, tools, stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine, ToolContext, ToolError, tool
from gemma_agent.agent.events import (
    ApprovalRequested,
    Notice,
    PlanUpdated,
    RunFinished,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    TurnFinished,
    Usage,
    event_to_dict,
)
from gemma_agent.agent.messages import ModelTurn, UserMessage
from gemma_agent.errors import ConfigError
from gemma_agent.prompts import render_ids
from pydantic import BaseModel

from .helpers import call, kinds, thought


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@tool
async def nap(seconds: float, label: str) -> str:
    """Sleep, then return the label."""
    await asyncio.sleep(seconds)
    return label


def make_agent(tmp_path: Path, outputs: list[Any], **kw: Any) -> tuple[Agent, ScriptedEngine]:
    engine_kw = {
        k: kw.pop(k) for k in ("token_delay", "supports_grammar", "max_model_len") if k in kw
    }
    engine = ScriptedEngine(outputs, **engine_kw)
    kw.setdefault("tools", [echo, nap])
    kw.setdefault("compactor", None)
    agent = Agent(engine=engine, workspace=tmp_path, **kw)
    return agent, engine


async def collect(agent: Agent, task: Any = "go", **kw: Any) -> list[Any]:
    return [e async for e in agent.stream(task, **kw)]


async def test_final_answer_events_and_history(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path, ["Hello there."])
    events = await collect(agent, "hi")
    assert kinds(events) == ["run_started", "text_delta", "usage", "turn_finished", "run_finished"]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hello there."
    fin = events[-1]
    assert (
        isinstance(fin, RunFinished)
        and fin.reason == "final_answer"
        and fin.output == "Hello there."
    )
    history = agent.history()
    assert [type(m) for m in history] == [UserMessage, ModelTurn]
    assert history[1].text == "Hello there." and history[1].tool_calls == ()
    engine.assert_complete()
    # Every event serializes for --json, with a snake_case kind.
    for e in events:
        d = json.loads(json.dumps(event_to_dict(e)))
        assert d["kind"] == e.kind and d["kind"].islower()


async def test_tool_round_is_an_exact_append_of_the_previous_request(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path, [call("echo", text="hi"), "It said hi."])
    result = await agent.run("say hi")
    assert result.output == "It said hi." and result.reason == "final_answer" and result.steps == 2
    first, second = engine.requests
    generated = engine.tokenizer.encode(first.output)
    # P2 = P1 + G1 + responses: nothing re-rendered, so the prefix cache covers P1 + G1.
    assert second.prompt_ids[: len(first.prompt_ids)] == first.prompt_ids
    assert second.prompt_ids[
        len(first.prompt_ids) : len(first.prompt_ids) + len(generated)
    ] == tuple(generated)
    assert second.prompt_text.endswith(
        '<|tool_response>response:echo{value:<|"|>hi<|"|>}<tool_response|>'
    )
    usage = [e for e in result.turns if isinstance(e, ModelTurn)][1].usage
    assert usage.cached_prompt_tokens == len(first.prompt_ids) + len(generated)
    # Canonical call text, family S, thinking off: the append equals a fresh render.
    turn = result.turns[1]
    assert isinstance(turn, ModelTurn) and turn.tool_results[0].content == "hi"
    decls = agent.registry.declarations()
    fresh = render_ids(result.turns[:2], decls, engine.tokenizer, variant="E4B")
    assert list(second.prompt_ids) == fresh


async def test_thinking_deltas_reasoning_and_budgets(tmp_path: Path) -> None:
    outputs = [
        thought("I should echo.") + call("echo", text="x"),
        "Reconsider.<channel|>" + call("echo", text="y"),
        "Fine.<channel|>Done.",
    ]
    agent, engine = make_agent(tmp_path, outputs, thinking=True, thinking_budget=100)
    events = await collect(agent)
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert "I should echo." in thinking and "Reconsider." in thinking
    turns = [m for m in agent.history() if isinstance(m, ModelTurn)]
    assert turns[0].reasoning == "I should echo." and turns[2].text == "Done."
    # After a tool round with thinking on the prompt re-opens the thought channel.
    assert engine.requests[1].prompt_text.endswith("<tool_response|><|channel>thought\n")
    # Budgets: larger for the first step, routine afterwards.
    assert [r.request.thinking_budget for r in engine.requests] == [200, 100, 100]
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage[0].thinking_tokens == len("thought\nI should echo.") and usage[
        1
    ].thinking_tokens == len("Reconsider.")
    assert usage[0].context_limit == engine.info.max_model_len - 4096
    assert usage[1].context_tokens == len(engine.requests[1].prompt_ids) + len(
        engine.tokenizer.encode(engine.requests[1].output)
    )


async def test_thinking_budget_is_bigger_after_a_failure(tmp_path: Path) -> None:
    @tool
    def fail() -> str:
        """Always fails."""
        raise ToolError("broken")

    outputs = [call("fail"), call("echo", text="a"), "ok"]
    agent, engine = make_agent(
        tmp_path, outputs, tools=[fail, echo], thinking=True, thinking_budget=10
    )
    await agent.run("x")
    assert [r.request.thinking_budget for r in engine.requests] == [20, 20, 10]


async def test_parallel_tools_overlap(tmp_path: Path) -> None:
    outputs = [
        call("nap", label="a", seconds=0.5) + call("nap", label="b", seconds=0.5),
        "both done",
    ]
    agent, _ = make_agent(tmp_path, outputs)
    t0 = time.perf_counter()
    events = await collect(agent)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.9, f"two 0.5 s tools took {elapsed:.2f} s: they did not overlap"
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert sorted(e.result.content for e in finished) == ["a", "b"]
    turn = agent.history()[1]
    assert isinstance(turn, ModelTurn) and [r.content for r in turn.tool_results] == ["a", "b"]


async def test_sequential_tools_do_not_overlap(tmp_path: Path) -> None:
    order: list[str] = []

    @tool(sequential=True)
    async def step(label: str) -> str:
        """A step that must run alone."""
        order.append(f"start {label}")
        await asyncio.sleep(0.1)
        order.append(f"end {label}")
        return label

    outputs = [call("step", label="1") + call("step", label="2"), "ok"]
    agent, _ = make_agent(tmp_path, outputs, tools=[step])
    await agent.run("x")
    assert order == ["start 1", "end 1", "start 2", "end 2"]


async def test_deps_reach_tools(tmp_path: Path) -> None:
    seen: list[Any] = []

    @tool
    def whoami(ctx: ToolContext) -> str:
        """Tell who runs."""
        seen.append(ctx.deps)
        return str(ctx.deps["user"])

    agent, engine = make_agent(tmp_path, [call("whoami"), "ok"], tools=[whoami])
    result = await agent.run("x", deps={"user": "ada"})
    assert seen == [{"user": "ada"}] and result.turns[1].tool_results[0].content == "ada"
    assert "ada" in engine.requests[1].prompt_text


async def test_max_steps(tmp_path: Path) -> None:
    outputs = [call("echo", text=str(i)) for i in range(3)]
    agent, _ = make_agent(tmp_path, outputs, max_steps=3)
    result = await agent.run("x")
    assert result.reason == "max_steps" and result.steps == 3 and result.output is None
    assert "max_steps" in (result.error or "")


async def test_token_budget(tmp_path: Path) -> None:
    outputs = [call("echo", text="a" * 30), call("echo", text="b" * 30), "never"]
    agent, engine = make_agent(tmp_path, outputs, max_tokens=60)
    result = await agent.run("x")
    assert result.reason == "token_budget"
    assert result.usage.generated_tokens >= 60 and len(engine.requests) == 2


async def test_time_limit_keeps_partial_turn(tmp_path: Path) -> None:
    agent, _ = make_agent(tmp_path, ["slow answer " * 40], token_delay=0.01, time_limit=0.3)
    result = await agent.run("x")
    assert result.reason == "time_limit"
    partial = result.turns[-1]
    assert isinstance(partial, ModelTurn) and partial.text.startswith("slow answer")


async def test_cancellation_cancels_tools_and_keeps_the_partial_turn(tmp_path: Path) -> None:
    outputs = [call("echo", text="quick") + call("nap", label="z", seconds=30)]
    agent, _ = make_agent(tmp_path, outputs)
    finished = asyncio.Event()
    events: list[Any] = []

    async def drive() -> None:
        async for e in agent.stream("x"):
            events.append(e)
            if isinstance(e, ToolCallFinished):
                finished.set()

    task = asyncio.create_task(drive())
    await asyncio.wait_for(finished.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == {asyncio.current_task()}, "a task survived the cancellation"
    turn = agent.history()[-1]
    assert isinstance(turn, ModelTurn)
    assert turn.tool_results[0].content == "quick" and not turn.tool_results[0].is_error
    assert turn.tool_results[1].is_error and "cancelled" in turn.tool_results[1].content
    # The session log has the partial turn and the cancellation.
    log = (agent.sessions_dir / f"{agent.session_id}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in log]
    assert records[-1]["type"] == "event" and records[-1]["event"]["reason"] == "cancelled"
    assert any(r["type"] == "message" and r["message"]["id"] == turn.id for r in records)


async def test_closing_the_stream_early_stops_the_run(tmp_path: Path) -> None:
    outputs = [call("nap", label="z", seconds=30)]
    agent, _ = make_agent(tmp_path, outputs)
    async with contextlib.aclosing(agent.stream("x")) as stream:
        async for e in stream:
            if e.kind == "tool_call_started":
                break
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_too_many_consecutive_errors(tmp_path: Path) -> None:
    @tool
    def fail(n: int) -> str:
        """Always fails."""
        raise ToolError(f"broken {n}")

    outputs = [call("fail", n=i) for i in range(3)]
    agent, _ = make_agent(tmp_path, outputs, tools=[fail], max_consecutive_errors=3)
    result = await agent.run("x")
    assert result.reason == "too_many_errors" and result.steps == 3


async def test_loop_detection_nudges_then_stops(tmp_path: Path) -> None:
    outputs = [call("echo", text="same")] * 4
    agent, engine = make_agent(tmp_path, outputs, loop_nudge_after=2, loop_stop_after=4)
    events = await collect(agent)
    fin = events[-1]
    assert fin.reason == "loop_detected" and "4 times" in fin.error
    turns = [m for m in agent.history() if isinstance(m, ModelTurn)]
    assert turns[0].tool_results[0].content == "same"
    assert turns[1].tool_results[0].content["warning"].startswith("You made exactly this call 2")
    assert "warning" in engine.requests[2].prompt_text
    assert turns[3].tool_results[0].is_error  # not executed
    assert any(isinstance(e, Notice) for e in events)


async def test_malformed_call_is_redecoded_with_the_grammar(tmp_path: Path) -> None:
    bad = '<|tool_call>call:echo{text:<|"|>unterminated'
    outputs = [bad, call("echo", text="ok"), "done"]
    agent, engine = make_agent(tmp_path, outputs, supports_grammar=True)
    events = await collect(agent)
    assert events[-1].reason == "final_answer"
    first, retry, _ = engine.requests
    assert retry.prompt_ids == first.prompt_ids  # same request, nearly free (prefix cache)
    assert first.request.grammar is None and retry.request.grammar is not None
    assert "call:" in retry.request.grammar and "echo" in retry.request.grammar
    turns = [m for m in agent.history() if isinstance(m, ModelTurn)]
    assert len(turns) == 2 and "unterminated" not in json.dumps([t.model_dump() for t in turns])
    log = (agent.sessions_dir / f"{agent.session_id}.jsonl").read_text()
    failed = [json.loads(x) for x in log.splitlines() if '"failed_attempt"' in x]
    assert len(failed) == 1 and "unterminated" in failed[0]["output"]


async def test_invalid_arguments_become_an_error_result_after_redecodes(tmp_path: Path) -> None:
    wrong = call("nap", seconds="soon", label="a")  # seconds must be a number
    outputs = [wrong, wrong, wrong, "gave up"]
    agent, engine = make_agent(tmp_path, outputs, max_redecodes=2)
    result = await agent.run("x")
    assert result.output == "gave up" and len(engine.requests) == 4
    turn = result.turns[1]
    assert isinstance(turn, ModelTurn) and turn.tool_results[0].is_error
    assert "seconds" in turn.tool_results[0].content
    assert "seconds" in engine.requests[3].prompt_text.split("<|tool_response>")[-1]


async def test_an_answer_left_inside_the_post_tool_thought_is_streamed_as_text(
    tmp_path: Path,
) -> None:
    """After a tool round with thinking on, the prompt opens the thought channel; a model that
    never closes it writes its answer there (robustness case 18): faces get it as text too."""
    outputs = [ScriptedEngine.thought("look") + call("echo", text="a"), "The answer."]
    agent, _ = make_agent(tmp_path, outputs, thinking=True)
    events = await collect(agent)
    texts = [e.text for e in events if isinstance(e, TextDelta) and e.step == 2]
    assert texts == ["The answer."] and events[-1].output == "The answer."


async def test_greedy_decoding_is_not_redone_with_the_same_grammar(tmp_path: Path) -> None:
    wrong = call("nap", seconds="soon", label="a")  # the same prompt would give it again
    agent, engine = make_agent(tmp_path, [wrong, "gave up"], max_redecodes=2, temperature=0.0)
    result = await agent.run("x")
    assert result.output == "gave up" and len(engine.requests) == 2
    assert result.turns[1].tool_results[0].is_error  # type: ignore[union-attr]


class Verdict(BaseModel):
    city: str
    temperature: int


async def test_output_type_is_validated_and_retried(tmp_path: Path) -> None:
    outputs = [
        "Paris, 21 degrees.",  # text instead of the final_answer call: nudged
        call("final_answer", city="Paris", temperature="warm"),  # invalid: error result
        call("final_answer", city="Paris", temperature=21),
    ]
    agent, engine = make_agent(tmp_path, outputs, output_type=Verdict)
    result = await agent.run("weather?")
    assert result.reason == "final_answer"
    assert isinstance(result.output, Verdict) and result.output == Verdict(
        city="Paris", temperature=21
    )
    assert "declaration:final_answer" in engine.requests[0].prompt_text
    assert "[agent] Give the final result by calling final_answer" in engine.requests[1].prompt_text
    assert "temperature" in engine.requests[2].prompt_text.split("<|tool_response>")[-1]
    engine.assert_complete()


async def test_tool_choice_required_ends_through_final_answer(tmp_path: Path) -> None:
    outputs = [call("echo", text="a"), call("final_answer", answer="all done")]
    agent, engine = make_agent(tmp_path, outputs, tool_choice="required", supports_grammar=True)
    result = await agent.run("x")
    assert result.output == "all done" and result.reason == "final_answer"
    grammars = [r.request.grammar for r in engine.requests]
    assert all(g and "final_answer" in g for g in grammars)


async def test_tool_choice_none_declares_no_tools(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path, ["plain"], tool_choice="none")
    result = await agent.run("x")
    assert result.output == "plain" and "<|tool>" not in engine.requests[0].prompt_text


async def test_engine_error_ends_the_run(tmp_path: Path) -> None:
    from gemma_agent.errors import EngineRequestFailed

    agent, _ = make_agent(tmp_path, [EngineRequestFailed("boom")])
    result = await agent.run("x")
    assert result.reason == "engine_error" and "boom" in (result.error or "")


async def test_conversation_continues_in_the_same_session(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path, ["One.", "Two."])
    first = await agent.run("a")
    second = await agent.run("b", session_id=first.session_id)
    assert second.session_id == first.session_id
    assert [m.role for m in second.turns] == ["user", "model", "user", "model"]
    assert "One." in engine.requests[1].prompt_text


async def test_tools_added_between_runs_are_declared_from_the_next_request(
    tmp_path: Path,
) -> None:
    @tool
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    agent, engine = make_agent(tmp_path, ["One.", call("shout", text="hi"), "Two."])
    first = await agent.run("a")
    assert "shout" not in engine.requests[0].prompt_text
    assert [t.name for t in agent.add_tools([shout])] == ["shout"]
    second = await agent.run("b", session_id=first.session_id)
    assert second.output == "Two."
    # The same session, its prompt rendered afresh with the new declaration in the system turn.
    assert "declaration:shout" in engine.requests[1].prompt_text
    assert "One." in engine.requests[1].prompt_text
    assert list(engine.requests[1].prompt_ids) == render_ids(
        second.turns[:3], agent.registry.declarations(), engine.tokenizer, variant="E4B"
    )
    (turn,) = [t for t in second.turns if isinstance(t, ModelTurn) and t.tool_calls]
    assert turn.tool_results[0].content == "HI"
    with pytest.raises(ConfigError, match="shout is there already"):
        agent.add_tools([shout])


async def test_count_tokens_is_exact(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path, [call("echo", text="a"), "ok"])
    result = await agent.run("x")
    conv_model = agent._conversations[result.session_id].model
    assert conv_model is not None
    for n in range(1, len(result.turns) + 1):
        fresh = render_ids(
            result.turns[:n], agent.registry.declarations(), engine.tokenizer, variant="E4B"
        )
        assert conv_model.count_tokens(result.turns[:n]) == len(fresh)


async def test_plan_first_and_plan_events(tmp_path: Path) -> None:
    from gemma_agent.tools import coding_tools

    plan = call("update_plan", items=[{"text": "look", "status": "in_progress"}, {"text": "fix"}])
    outputs = [plan, "done"]
    engine = ScriptedEngine(outputs, supports_grammar=True)
    agent = Agent(
        engine=engine, tools=coding_tools(), workspace=tmp_path, plan_first=True, compactor=None
    )
    events = await collect(agent)
    plans = [e for e in events if isinstance(e, PlanUpdated)]
    assert len(plans) == 1 and [(i.text, i.status) for i in plans[0].items] == [
        ("look", "in_progress"),
        ("fix", "pending"),
    ]
    g = engine.requests[0].request.grammar
    assert g is not None and "update_plan" in g and "read_file{" not in g
    assert engine.requests[1].request.grammar is None


async def test_approval_denied_becomes_a_result(tmp_path: Path) -> None:
    from gemma_agent.tools import ApprovalPolicy

    @tool
    def write_note(text: str) -> str:
        """Write a note."""
        return "written"

    outputs = [call("write_note", text="x"), "ok, not written"]
    engine = ScriptedEngine(outputs)
    agent = Agent(
        engine=engine,
        tools=[write_note],
        workspace=tmp_path,
        approval=ApprovalPolicy(mode="ask", workspace=tmp_path),
        compactor=None,
    )
    seen: list[ApprovalRequested] = []
    async for e in agent.stream("x", answers_approvals=True):
        if isinstance(e, ApprovalRequested):
            seen.append(e)
            e.respond("deny")
    assert len(seen) == 1 and seen[0].call.name == "write_note"
    turn = agent.history()[1]
    assert isinstance(turn, ModelTurn) and turn.tool_results[0].is_error
    assert "denied" in turn.tool_results[0].content
    assert "denied" in engine.requests[1].prompt_text


async def test_approval_callback_allows(tmp_path: Path) -> None:
    from gemma_agent.tools import ApprovalPolicy

    calls: list[str] = []

    @tool
    def write_note(text: str) -> str:
        """Write a note."""
        calls.append(text)
        return "written"

    async def approve(request: ApprovalRequested) -> str:
        return "allow"

    engine = ScriptedEngine([call("write_note", text="x"), "ok"])
    agent = Agent(
        engine=engine,
        tools=[write_note],
        workspace=tmp_path,
        approval=ApprovalPolicy(mode="ask", workspace=tmp_path),
        on_approval=approve,
        compactor=None,
    )
    result = await agent.run("x")
    assert calls == ["x"] and result.turns[1].tool_results[0].content == "written"


def test_run_sync(tmp_path: Path) -> None:
    agent, _ = make_agent(tmp_path, ["sync ok"])
    assert agent.run_sync("x").output == "sync ok"


async def test_turn_finished_after_each_step(tmp_path: Path) -> None:
    agent, _ = make_agent(tmp_path, [call("echo", text="a"), "b"])
    events = await collect(agent)
    done = [e for e in events if isinstance(e, TurnFinished)]
    assert [e.step for e in done] == [1, 2] and done[0].turn.tool_results[0].content == "a"


async def test_approvals_are_asked_before_any_call_runs(tmp_path: Path) -> None:
    from gemma_agent.tools import ApprovalPolicy, ToolNotice

    ran: list[str] = []

    @tool(read_only=True)
    def look(ctx: ToolContext) -> str:
        """Look around."""
        ran.append("look")
        ctx.emit(ToolNotice("looked", "warning"))
        return "seen"

    @tool
    def change() -> str:
        """Change something."""
        ran.append("change")
        return "changed"

    engine = ScriptedEngine([call("look") + call("change"), "ok"])
    agent = Agent(
        engine=engine,
        tools=[look, change],
        workspace=tmp_path,
        approval=ApprovalPolicy(mode="ask", workspace=tmp_path),
        compactor=None,
    )
    order: list[str] = []
    async for e in agent.stream("x", answers_approvals=True):
        if isinstance(e, ApprovalRequested):
            order.append(f"asked {e.call.name} after {len(ran)} calls ran")
            e.respond("allow")
        elif isinstance(e, Notice):
            order.append(f"notice {e.message}")
    assert order == ["asked change after 0 calls ran", "notice looked"]
    assert sorted(ran) == ["change", "look"]
