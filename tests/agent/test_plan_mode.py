"""Plan mode on ScriptedEngine: the call grammar lists only read-only tools and update_plan, a
write is refused with a message the model reads, the declarations stay the same (the prefix
cache stays hot across a mode switch), and the accepted plan is pinned for execution."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.events import Notice, ToolCallFinished, Usage
from gemma_agent.agent.messages import UserMessage
from gemma_agent.errors import ConfigError
from gemma_agent.tools.builtin import coding_tools

from .helpers import call

WRITE_TOOLS = ("write_file", "edit_file", "run_shell")
PLAN = call(
    "update_plan",
    items=[{"text": "read notes.txt", "status": "done"}, {"text": "fix the typo"}],
)


def plan_agent(tmp_path: Path, outputs: list[str], **kw: object) -> tuple[Agent, ScriptedEngine]:
    engine = ScriptedEngine(outputs, supports_grammar=bool(kw.pop("grammar", False)))
    (tmp_path / "notes.txt").write_text("helo\n")
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none"),
        workspace=tmp_path,
        compactor=None,
        persist=False,
        **kw,  # type: ignore[arg-type]
    )
    return agent, engine


def _rule_names(grammar: str) -> set[str]:
    """The tool names a grammar lets a call use (its fn_ rules)."""
    names = set()
    for line in grammar.splitlines():
        if line.startswith("fn_"):
            names.add(line.split(":", 1)[1].split("{")[0].strip().strip('"'))
    return names


async def test_a_write_in_plan_mode_is_refused_with_a_message_the_model_reads(
    tmp_path: Path,
) -> None:
    outputs = [
        call("write_file", path="notes.txt", content="hello\n"),
        PLAN,
        "Plan: fix the typo in notes.txt.",
    ]
    agent, engine = plan_agent(tmp_path, outputs, mode="plan")
    events = [e async for e in agent.stream("fix the typo in notes.txt")]
    engine.assert_complete()
    assert (tmp_path / "notes.txt").read_text() == "helo\n"  # nothing was written
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    write = finished[0].result
    assert finished[0].call.name == "write_file" and write.is_error
    assert "Plan mode: write_file is not available" in str(write.content)
    # The model read the refusal: it is in the next request's prompt.
    assert "Plan mode: write_file is not available" in engine.requests[1].prompt_text
    assert finished[1].call.name == "update_plan" and not finished[1].result.is_error
    # The mode is said in an appended message, after the task; the system turn is unchanged.
    history = agent.history()
    assert isinstance(history[1], UserMessage) and history[1].content.startswith("[agent] Plan")
    assert any(isinstance(e, Notice) and "Plan mode" in e.message for e in events)


async def test_plan_mode_grammar_lists_only_read_only_tools(tmp_path: Path) -> None:
    agent, engine = plan_agent(tmp_path, [PLAN, "Planned."], grammar=True)
    result = await agent.run("plan the fix", mode="plan")
    assert result.ok
    grammar = engine.requests[0].request.grammar
    assert grammar is not None  # constrained even with tool_choice="auto"
    allowed = _rule_names(grammar)
    assert allowed == {"read_file", "list_dir", "glob", "grep", "update_plan"}
    assert not allowed & set(WRITE_TOOLS)
    # The declarations in the prompt are all still there (write tools included).
    for name in WRITE_TOOLS:
        assert f"declaration:{name}{{" in engine.requests[0].prompt_text
    # Back in the default mode: no grammar for "auto", as before.
    engine.add("Done.")
    await agent.run("now do it", session_id=result.session_id)
    assert engine.requests[-1].request.grammar is None


async def test_a_required_tool_choice_outside_plan_mode_tools_falls_back(tmp_path: Path) -> None:
    agent, engine = plan_agent(
        tmp_path, [PLAN, call("final_answer", answer="ok")], grammar=True, tool_choice="write_file"
    )
    result = await agent.run("plan", mode="plan")
    assert result.ok
    names = _rule_names(engine.requests[0].request.grammar or "")
    assert "write_file" not in names and "update_plan" in names


async def test_accepting_the_plan_pins_it_and_keeps_the_cache_hot(tmp_path: Path) -> None:
    agent, engine = plan_agent(tmp_path, [PLAN, "Plan ready."], mode="plan")
    first = await agent.run("fix the typo in notes.txt")
    assert first.ok
    engine.add(call("write_file", path="notes.txt", content="hello\n"), "Fixed.")
    usages: list[Usage] = []
    second = await agent.run(
        "go ahead",
        session_id=first.session_id,
        mode="default",
        on_event=lambda e: usages.append(e) if isinstance(e, Usage) else None,
    )
    assert second.ok
    assert (tmp_path / "notes.txt").read_text() == "hello\n"  # executed with every tool
    note = [m for m in agent.history() if isinstance(m, UserMessage)][-1]
    assert note.content.startswith("[agent] Plan mode is over")
    assert "1. [x] read notes.txt" in note.content and "2. [ ] fix the typo" in note.content
    # Same system turn and declarations across the switch: the whole previous conversation is
    # a cached prefix of the first request after it.
    before = engine.requests[1].prompt_ids
    after = engine.requests[2].prompt_ids
    assert list(after[: len(before)]) == list(before)
    share = usages[0].cached_prompt_tokens / usages[0].prompt_tokens
    assert share > 0.9, share


async def test_a_plan_mode_session_resumed_after_a_restart_pins_its_plan(tmp_path: Path) -> None:
    engine = ScriptedEngine([PLAN, "Plan ready."])
    options = {"tools": coding_tools(sandbox="none"), "workspace": tmp_path, "compactor": None,
               "sessions_dir": tmp_path / ".s", "fsync": False}  # fmt: skip
    first = await Agent(engine=engine, mode="plan", **options).run("plan the typo fix")  # type: ignore[arg-type]
    engine.add("Fixed.")
    later = Agent(engine=engine, **options)  # type: ignore[arg-type]  # a new process
    await later.run("go ahead", session_id=first.session_id)
    note = [m for m in later.history() if isinstance(m, UserMessage)][-1]
    assert note.content.startswith("[agent] Plan mode is over")
    assert "1. [x] read notes.txt" in note.content and "2. [ ] fix the typo" in note.content


def test_unknown_mode_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode='draft'"):
        Agent(engine=ScriptedEngine(), workspace=tmp_path, mode="draft")  # type: ignore[arg-type]
