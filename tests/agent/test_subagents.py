"""Sub-agents on the scripted engine: the task tool, concurrency and its cap, events tagged with
the child's path, approvals a child asks, failures, cancellation, depth, agent files, sessions,
usage, SubagentStop, and `Agent.as_tool` with a typed output."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent.session import child_sessions_dir, load_session
from gemma_agent.agent.subagents import AgentType
from gemma_agent.events import (
    ApprovalRequested,
    Notice,
    RunFinished,
    RunStarted,
    SubagentEvent,
    ToolCallFinished,
    ToolCallStarted,
    event_to_dict,
)
from gemma_agent.tools import ApprovalPolicy
from pydantic import BaseModel

from ..subagent_scripts import Router, task

pytestmark = pytest.mark.timeout(60)

call = ScriptedEngine.tool_call
PARENT = "You are the parent."


def make(tmp_path: Path, engine: ScriptedEngine, tools: list[Any], **kw: Any) -> Agent:
    options: dict[str, Any] = {"subagents": True, "compactor": None, "approval": None, **kw}
    return Agent(
        engine=engine, tools=tools, instructions=PARENT, workspace=tmp_path,
        sessions_dir=tmp_path / ".s", fsync=False, **options,
    )  # fmt: skip


def both_in_flight(n: int = 2) -> tuple[Any, list[str]]:
    """A read-only tool that returns only once ``n`` calls of it are running at once."""
    arrived: list[str] = []
    ready = asyncio.Event()

    @tool(read_only=True)
    async def probe(tag: str) -> str:
        """Probe a place."""
        arrived.append(tag)
        if len(arrived) >= n:
            ready.set()
        await asyncio.wait_for(ready.wait(), 5)
        return f"probed {tag}"

    return probe, arrived


@tool
def write_note(text: str) -> str:
    """Write a note."""
    return "written"


async def test_two_explorers_run_at_once_and_report_to_the_parent(tmp_path: Path) -> None:
    probe, arrived = both_in_flight(2)
    router = Router({
        "parent": [task("TASK-a find the config") + task("TASK-b find the tests"), "Both found."],
        "a": [call("probe", tag="a"), "Config is in a.toml"],
        "b": [call("probe", tag="b"), "Tests are in tests/"],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [probe, write_note])
    events: list[Any] = []
    result = await agent.run("map the project", on_event=events.append)
    assert result.output == "Both found." and sorted(arrived) == ["a", "b"]

    answers = {r.call_id: r.content for r in result.turns[1].tool_results}  # type: ignore[union-attr]
    assert sorted(answers.values()) == ["Config is in a.toml", "Tests are in tests/"]
    tagged = [e for e in events if isinstance(e, SubagentEvent)]
    assert {e.agent for e in tagged} == {"main/explore#1", "main/explore#2"}
    calls = {e.agent: e.call_id for e in tagged}
    assert set(calls.values()) == set(answers)  # each child under its own task call
    child_calls = [e.event.call.name for e in tagged if isinstance(e.event, ToolCallStarted)]
    assert child_calls == ["probe", "probe"]
    ends = [type(e) for e in events if isinstance(e, RunStarted | RunFinished)]
    assert ends == [RunStarted, RunFinished]  # the parent's own: the children's are wrapped

    # explore sees the read-only tools only, and no task tool (depth 1)
    child_prompt = next(r.prompt_text for r in child_requests(agent))
    assert "probe" in child_prompt and "write_note" not in child_prompt
    assert "You are an explorer" in child_prompt and "declaration:task{" not in child_prompt

    # usage: the parent's run counts the children's requests (2 + 2 + 2)
    assert result.usage.requests == 6
    finished = [e.event for e in tagged if isinstance(e.event, RunFinished)]
    assert [f.usage.requests for f in finished if f.usage] == [2, 2]

    # sessions: the children's logs sit under the parent's, linked from its log
    saved = load_session(agent.session_file(result.session_id))
    assert sorted(c["agent"] for c in saved.children) == ["main/explore#1", "main/explore#2"]
    folder = child_sessions_dir(agent.sessions_dir, result.session_id)
    for link in saved.children:
        child = load_session(folder / f"{link['session_id']}.jsonl")
        assert child.meta["parent"] == result.session_id and child.meta["agent"] == link["agent"]
        assert child.history[-1].text in answers.values()  # type: ignore[union-attr]
        assert link["usage"]["requests"] == 2
    assert agent.sessions() == [result.session_id]  # children are not listed as sessions
    json.dumps([event_to_dict(e) for e in tagged])  # --json can print them
    assert event_to_dict(tagged[0])["event"]["kind"] == tagged[0].event.kind


def child_requests(agent: Agent) -> list[Any]:
    """The requests the children sent (the parent's hold its instructions)."""
    engine = agent._engine
    assert isinstance(engine, ScriptedEngine)
    return [r for r in engine.requests if PARENT not in r.prompt_text]


async def test_the_cap_runs_children_one_at_a_time(tmp_path: Path) -> None:
    order: list[str] = []

    @tool(read_only=True)
    async def step(tag: str) -> str:
        """Take a step."""
        order.append(f"start {tag}")
        await asyncio.sleep(0.05)
        order.append(f"end {tag}")
        return tag

    router = Router({
        "parent": [task("TASK-a one") + task("TASK-b two"), "Done."],
        "a": [call("step", tag="a"), "A."],
        "b": [call("step", tag="b"), "B."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [step], max_subagents=1)
    assert (await agent.run("go")).output == "Done."
    assert order in (["start a", "end a", "start b", "end b"],
                     ["start b", "end b", "start a", "end a"])  # fmt: skip


async def test_a_child_asks_and_the_parents_consumer_answers(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g note it", "general"), "Noted."],
        "g": [call("write_note", text="hi"), "I wrote it."],
    })  # fmt: skip
    policy = ApprovalPolicy("ask", store=tmp_path / "approvals.json")
    agent = make(tmp_path, router.engine(), [write_note], approval=policy)
    asked: list[ApprovalRequested] = []

    def on_event(event: Any) -> None:
        if isinstance(event, ApprovalRequested):
            asked.append(event)
            event.respond("allow")

    result = await agent.run("go", on_event=on_event, answers_approvals=True)
    assert result.output == "Noted."
    assert [a.agent for a in asked] == ["main/general#1"] and asked[0].call.name == "write_note"
    child = result.turns[1].tool_results[0]  # type: ignore[union-attr]
    assert child.content == "I wrote it." and not child.is_error


async def test_a_child_that_nobody_can_approve_is_denied_not_stuck(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g note it", "general"), "Could not."],
        "g": [call("write_note", text="hi"), "Denied, so I stopped."],
    })  # fmt: skip
    policy = ApprovalPolicy("ask", store=tmp_path / "approvals.json")
    agent = make(tmp_path, router.engine(), [write_note], approval=policy)
    result = await asyncio.wait_for(agent.run("go"), 10)
    assert result.output == "Could not."
    assert "Denied, so I stopped." in str(result.turns[1].tool_results[0].content)  # type: ignore[union-attr]


async def test_a_failing_child_is_an_error_result_and_the_parent_goes_on(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-a loop"), "It failed; moving on."],
        "a": [call("probe", tag="x"), call("probe", tag="y")],
    })  # fmt: skip

    @tool(read_only=True)
    def probe(tag: str) -> str:
        """Probe."""
        return tag

    kinds = [AgentType("explore", "Explores.", "You are an explorer.", read_only=True,
                       max_steps=2)]  # fmt: skip
    agent = make(tmp_path, router.engine(), [probe], subagents=kinds)
    result = await agent.run("go")
    assert result.output == "It failed; moving on."
    failed = result.turns[1].tool_results[0]  # type: ignore[union-attr]
    assert failed.is_error and "main/explore#1 did not finish" in str(failed.content)
    assert "max_steps" in str(failed.content)


async def test_an_engine_error_in_a_child_is_an_error_result(tmp_path: Path) -> None:
    def boom(request: Any) -> str:
        raise RuntimeError("the engine fell over")

    engine = ScriptedEngine([task("TASK-a x"), boom, "Recovered."])
    agent = make(tmp_path, engine, [])
    result = await agent.run("go")
    assert result.output == "Recovered."
    failed = result.turns[1].tool_results[0]  # type: ignore[union-attr]
    assert failed.is_error and "engine" in str(failed.content)


async def test_cancelling_the_parent_cancels_its_children(tmp_path: Path) -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    @tool(read_only=True)
    async def wait_forever(tag: str) -> str:
        """Wait."""
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(tag)
            raise
        return tag

    router = Router({
        "parent": [task("TASK-a wait") + task("TASK-b wait")],
        "a": [call("wait_forever", tag="a")],
        "b": [call("wait_forever", tag="b")],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [wait_forever])
    stream = agent.stream("go")
    async with contextlib.aclosing(stream) as events:
        async for _ in events:
            if started.is_set() and len(router.asked) == 3:
                break
    assert sorted(cancelled) == ["a", "b"]


async def test_depth_two_lets_a_child_start_a_grandchild(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g delegate", "general"), "All done."],
        "g": [task("TASK-e look", "explore"), "Delegated and done."],
        "e": ["Looked."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [], subagent_depth=2)
    events: list[Any] = []
    result = await agent.run("go", on_event=events.append)
    assert result.output == "All done."
    paths = {e.agent for e in events if isinstance(e, SubagentEvent)}
    assert paths == {"main/general#1", "main/general#1/explore#1"}
    assert result.usage.requests == 5


async def test_children_cannot_start_children_by_default(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g delegate", "general"), "Done."],
        "g": [task("TASK-e look", "explore"), "I did it myself."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [])
    result = await agent.run("go")
    child_prompts = [r.prompt_text for r in child_requests(agent)]
    assert "declaration:task{" not in child_prompts[0]  # no task tool declared to the child
    assert result.output == "Done."


async def test_agent_files_define_types_and_bad_ones_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / ".gemma-agent" / "agents"
    folder.mkdir(parents=True)
    (folder / "reviewer.md").write_text(
        "---\nname: reviewer\ndescription: Reviews a change for bugs.\ntools: probe\n"
        "max_steps: 3\n---\nYou review code. Report bugs only.\n"
    )
    (folder / "broken.md").write_text("---\nname: broken\n---\nno description\n")

    @tool(read_only=True)
    def probe(tag: str) -> str:
        """Probe."""
        return tag

    router = Router({
        "parent": [task("TASK-r review it", "reviewer"), "Reviewed."],
        "r": [call("probe", tag="diff"), "No bugs."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [probe, write_note])
    assert [t.name for t in agent.project_context.agent_types] == ["explore", "general",
                                                                   "reviewer"]  # fmt: skip
    events: list[Any] = []
    result = await agent.run("review", on_event=events.append)
    assert result.output == "Reviewed."
    warnings = [e.message for e in events if isinstance(e, Notice) and e.level == "warning"]
    assert any("broken.md" in w and "description" in w for w in warnings)
    prompt = child_requests(agent)[0].prompt_text
    assert "You review code." in prompt and "write_note" not in prompt
    parent_prompt = agent._engine.requests[0].prompt_text  # type: ignore[union-attr]
    assert "reviewer: Reviews a change for bugs." in parent_prompt


async def test_subagent_stop_hooks_see_the_child_and_may_send_it_back(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def check(payload: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(payload)
        if len(seen) == 1:
            return {"decision": "block", "reason": "cite a file"}
        return None

    stops: list[dict[str, Any]] = []
    hooks = {
        "SubagentStop": [{"matcher": "", "hooks": [check]}],
        "Stop": [{"matcher": "", "hooks": [stops.append]}],
    }
    router = Router({
        "parent": [task("TASK-a look"), "Done."],
        "a": ["It is somewhere.", "It is in a.py:3."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [], hooks=hooks)
    result = await agent.run("go")
    assert result.turns[1].tool_results[0].content == "It is in a.py:3."  # type: ignore[union-attr]
    assert [p["agent_path"] for p in seen] == ["main/explore#1", "main/explore#1"]
    assert [p["hook_event_name"] for p in stops] == ["Stop"]  # the parent's only


class Verdict(BaseModel):
    ok: bool
    reason: str


async def test_as_tool_makes_any_agent_a_tool_with_typed_output(tmp_path: Path) -> None:
    judge_engine = ScriptedEngine([call("final_answer", ok=True, reason="tests pass")])
    judge = Agent(
        engine=judge_engine, output_type=Verdict, instructions="You judge.", workspace=tmp_path,
        sessions_dir=tmp_path / ".judge", fsync=False, compactor=None,
    )  # fmt: skip
    engine = ScriptedEngine([call("judge", prompt="is it done?"), "The judge says yes."])
    agent = Agent(
        engine=engine, tools=[judge.as_tool("judge", "Ask the judge.")], workspace=tmp_path,
        sessions_dir=tmp_path / ".s", fsync=False, compactor=None,
    )  # fmt: skip
    events: list[Any] = []
    result = await agent.run("check", on_event=events.append)
    assert result.output == "The judge says yes."
    answer = result.turns[1].tool_results[0]  # type: ignore[union-attr]
    assert answer.content == {"ok": True, "reason": "tests pass"}
    assert {e.agent for e in events if isinstance(e, SubagentEvent)} == {"main/judge#1"}
    assert result.usage.requests == 3
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [f.call.name for f in finished] == ["judge"]  # the child's calls are wrapped


def test_the_task_tool_name_is_reserved(tmp_path: Path) -> None:
    @tool
    def task(x: str) -> str:
        """Mine."""
        return x

    from gemma_agent.errors import ConfigError

    with pytest.raises(ConfigError, match="'task'"):
        Agent(engine=ScriptedEngine([]), tools=[task], subagents=True, workspace=tmp_path)


async def test_a_general_childs_changes_are_undone_by_rewinding_its_parent(tmp_path: Path) -> None:
    from gemma_agent.tools.builtin import write_file

    router = Router({
        "parent": [task("TASK-x look"), task("TASK-g write", "general"), "Written."],
        "x": ["Nothing to see."],
        "g": [call("write_file", path="made.txt", content="by the child\n"), "Made it."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [write_file], compactor=None)
    result = await agent.run("make a file")
    assert (tmp_path / "made.txt").read_text() == "by the child\n"
    points = await agent.checkpoints(result.session_id)
    rounds = [p for p in points if p.kind == "round"]
    assert len(rounds) == 1  # the explore round took no snapshot; the general one did
    await agent.rewind(result.session_id, to=points[0], conversation=False)
    assert not (tmp_path / "made.txt").exists()


async def test_each_childs_log_is_closed_when_it_finishes(tmp_path: Path) -> None:
    import threading

    router = Router({
        "parent": [task("TASK-a one") + task("TASK-b two"), "Done."],
        "a": ["A."],
        "b": ["B."],
    })  # fmt: skip
    agent = Agent(
        engine=router.engine(), instructions=PARENT, workspace=tmp_path, subagents=True,
        sessions_dir=tmp_path / ".s", fsync=True, compactor=None,
    )  # fmt: skip
    result = await agent.run("go")
    syncing = {t.name for t in threading.enumerate()}
    assert f"fsync {result.session_id}.jsonl" in syncing  # the parent's, still open
    children = [run.log.name for run in agent.subagent_runs(result.session_id)]
    assert len(children) == 2 and not {f"fsync {name}" for name in children} & syncing
    await agent.aclose()


async def test_as_tool_children_are_linked_wherever_their_logs_are(tmp_path: Path) -> None:
    helper = Agent(
        engine=ScriptedEngine(["helped"]), workspace=tmp_path, sessions_dir=tmp_path / ".helper",
        fsync=False, compactor=None,
    )  # fmt: skip
    agent = Agent(
        engine=ScriptedEngine([call("helper", prompt="help"), "Thanks."]),
        tools=[helper.as_tool("helper")], workspace=tmp_path, sessions_dir=tmp_path / ".s",
        fsync=False, compactor=None,
    )  # fmt: skip
    result = await agent.run("go")
    [child] = agent.subagent_runs(result.session_id)
    assert child.agent == "main/helper#1" and child.reason == "final_answer"
    assert child.log.parent == tmp_path / ".helper" and child.history[-1].text == "helped"  # type: ignore[union-attr]
    assert child.usage["requests"] == 1 and child.call_id == result.turns[1].tool_calls[0].id  # type: ignore[union-attr]


async def test_an_explorer_runs_read_only_shell_commands_only(tmp_path: Path) -> None:
    from gemma_agent.tools.builtin import coding_tools

    (tmp_path / "a.txt").write_text("alpha\n")
    router = Router({
        "parent": [task("TASK-a look"), "Done."],
        "a": [call("run_shell", command="cat a.txt") + call("run_shell", command="rm a.txt"),
              "a.txt says alpha."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), coding_tools(sandbox="none"), approval="yolo")
    events: list[Any] = []
    result = await agent.run("go", on_event=events.append)
    assert result.output == "Done." and (tmp_path / "a.txt").exists()
    done = {e.event.call.arguments["command"]: e.event.result for e in events
            if isinstance(e, SubagentEvent) and isinstance(e.event, ToolCallFinished)}  # fmt: skip
    assert "alpha" in str(done["cat a.txt"].content) and not done["cat a.txt"].is_error
    assert done["rm a.txt"].is_error and "this agent is read-only" in str(done["rm a.txt"].content)
    declared = child_requests(agent)[0].prompt_text
    assert "run_shell" in declared and "write_file" not in declared


async def test_saved_runs_list_grandchildren_after_their_parent(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g delegate", "general"), "All done."],
        "g": [task("TASK-e look", "explore"), "Delegated."],
        "e": ["Looked."],
    })  # fmt: skip
    agent = make(tmp_path, router.engine(), [], subagent_depth=2)
    result = await agent.run("go")
    runs = Agent(engine=ScriptedEngine([]), sessions_dir=agent.sessions_dir).subagent_runs(
        result.session_id
    )  # a fresh agent: from the logs alone
    assert [r.agent for r in runs] == ["main/general#1", "main/general#1/explore#1"]
    assert [r.history[-1].text for r in runs] == ["Delegated.", "Looked."]  # type: ignore[union-attr]
    assert runs[1].call_id == runs[0].history[1].tool_calls[0].id  # type: ignore[union-attr]
