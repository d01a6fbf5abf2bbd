"""Sub-agents in `gemma-agent run` on ScriptedEngine: on by default (--no-subagents,
--max-subagents), the children's tool calls as indented lines, their events nested in --json,
and approvals a child asks at a terminal (or denied with no one to ask)."""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import ScriptedEngine, tool
from gemma_agent.cli import build_parser
from gemma_agent.headless import app as headless
from gemma_agent.headless import run_headless
from gemma_agent.launch import subagent_options

from ..subagent_scripts import Router, task

pytestmark = pytest.mark.timeout(60)

call, thought = ScriptedEngine.tool_call, ScriptedEngine.thought


@tool(read_only=True)
def probe(tag: str) -> str:
    """Probe a place."""
    return f"probed {tag}"


@tool
def write_note(text: str) -> str:
    """Write a note."""
    return "written"


def run(tmp_path: Path, engine: ScriptedEngine, *flags: str) -> tuple[int, str]:
    out = io.StringIO()
    args = build_parser().parse_args(["run", "map it", "--workspace", str(tmp_path), *flags])
    code = run_headless(args, engine=engine, tools=[probe, write_note], out=out)
    return code, out.getvalue()


def two_explorers() -> Router:
    return Router({
        "parent": [task("TASK-a find the config") + task("TASK-b find the tests"), "Both found."],
        "a": [call("probe", tag="a"), thought("CHILD-THOUGHT") + "Config is in a.toml"],
        "b": [call("probe", tag="b"), "Tests are in tests/"],
    })  # fmt: skip


def test_text_mode_shows_the_childrens_calls_indented(tmp_path: Path) -> None:
    code, text = run(tmp_path, two_explorers().engine(), "--thinking")
    assert code == 0 and "Both found." in text
    lines = text.splitlines()
    started = [line for line in lines if "↳" in line and "probe" in line]
    assert sorted(started) == [
        '  ↳ explore#1 probe tag="a"',
        '  ↳ explore#2 probe tag="b"',
    ] or sorted(started) == ['  ↳ explore#1 probe tag="b"', '  ↳ explore#2 probe tag="a"']
    ended = [line for line in lines if "↳" in line and "final_answer" in line]
    assert sorted(ended) == [
        "  ↳ explore#1 — final_answer after 2 steps",
        "  ↳ explore#2 — final_answer after 2 steps",
    ]
    assert "CHILD-THOUGHT" not in text  # a child's thinking and text are its own
    assert text.count("▶ task") == 2


def test_json_lines_carry_the_childrens_events_nested(tmp_path: Path) -> None:
    code, text = run(tmp_path, two_explorers().engine(), "--json")
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    tasks = {e["call"]["id"] for e in lines if e["kind"] == "tool_call_started"}
    nested = [e for e in lines if e["kind"] == "subagent"]
    assert {e["agent"] for e in nested} == {"main/explore#1", "main/explore#2"}
    assert {e["call_id"] for e in nested} == tasks  # each child under its task call
    inner = [e["event"]["kind"] for e in nested if e["agent"] == "main/explore#1"]
    assert inner[0] == "run_started" and inner[-1] == "run_finished"
    assert "tool_call_started" in inner and "tool_call_finished" in inner
    calls = [e["event"]["call"] for e in nested if e["event"]["kind"] == "tool_call_started"]
    assert sorted(c["arguments"]["tag"] for c in calls) == ["a", "b"]
    assert lines[-1]["kind"] == "run_finished" and lines[-1]["output"] == "Both found."


def test_a_child_asks_at_the_terminal_saying_who_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.prompt import Prompt

    asked: list[str] = []

    def answer(question: str, **kwargs: Any) -> str:
        asked.append(question)
        return "y"

    monkeypatch.setattr(headless, "_interactive", lambda: True)
    monkeypatch.setattr(Prompt, "ask", answer)
    router = Router({
        "parent": [task("TASK-g note it", "general"), "Noted."],
        "g": [call("write_note", text="hi"), "I wrote it."],
    })  # fmt: skip
    code, text = run(tmp_path, router.engine(), "--approval", "ask")
    assert code == 0 and "Noted." in text
    assert len(asked) == 1 and asked[0].startswith("general#1 asks: Allow write_note(")
    assert "approval needed for write_note (general#1 asks)" in text


def test_children_asking_together_are_asked_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.prompt import Prompt

    asking: list[str] = []
    overlaps: list[int] = []

    def answer(question: str, **kwargs: Any) -> str:
        asking.append(question)
        overlaps.append(len(asking))
        time.sleep(0.1)  # a person reading the question
        asking.remove(question)
        return "y"

    monkeypatch.setattr(headless, "_interactive", lambda: True)
    monkeypatch.setattr(Prompt, "ask", answer)
    router = Router({
        "parent": [task("TASK-g one", "general") + task("TASK-h two", "general"), "Both."],
        "g": [call("write_note", text="g"), "g wrote"],
        "h": [call("write_note", text="h"), "h wrote"],
    })  # fmt: skip
    code, text = run(tmp_path, router.engine(), "--approval", "ask")
    assert code == 0 and "Both." in text
    assert overlaps == [1, 1]


def test_a_childs_request_with_no_one_to_ask_is_denied(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g note it", "general"), "Could not."],
        "g": [call("write_note", text="hi"), "Denied, so I stopped."],
    })  # fmt: skip
    code, text = run(tmp_path, router.engine(), "--approval", "ask", "--json")
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    notices = [e for e in lines if e["kind"] == "subagent" and e["event"]["kind"] == "notice"]
    assert notices and notices[0]["agent"] == "main/general#1"
    assert "no one can answer: denied" in notices[0]["event"]["message"]
    done = next(e for e in lines if e["kind"] == "tool_call_finished")
    assert done["result"]["content"] == "Denied, so I stopped."


def test_text_mode_shows_a_childs_denial_and_failure(tmp_path: Path) -> None:
    router = Router({
        "parent": [task("TASK-g note it", "general"), "Could not."],
        "g": [call("write_note", text="hi"), "Denied, so I stopped."],
    })  # fmt: skip
    code, text = run(tmp_path, router.engine(), "--approval", "ask")
    assert code == 0
    assert "  ↳ general#1 write_note needs approval; no one can answer: denied" in text
    assert "  ↳ general#1 ✗ write_note" in text


def test_subagents_are_on_by_default_and_the_flags_turn_them_off(tmp_path: Path) -> None:
    declared = "Hand a task to a sub-agent"
    engine = ScriptedEngine(["Hi."])
    assert run(tmp_path, engine)[0] == 0
    assert declared in engine.requests[0].prompt_text
    engine = ScriptedEngine(["Hi."])
    assert run(tmp_path, engine, "--no-subagents")[0] == 0
    assert declared not in engine.requests[0].prompt_text


def test_the_flags_and_their_defaults() -> None:
    args = build_parser().parse_args(["run", "x", "--max-subagents", "1"])
    assert subagent_options(args) == {"subagents": True, "max_subagents": 1}
    args = build_parser().parse_args(["run", "x", "--no-subagents"])
    assert subagent_options(args) == {"subagents": False, "max_subagents": 4}
    settings = argparse.Namespace(subagents=False, max_subagents=2)  # a config file's keys
    assert subagent_options(build_parser().parse_args([]), settings) == {
        "subagents": False,
        "max_subagents": 2,
    }
    assert subagent_options(build_parser().parse_args(["--subagents"]), settings)["subagents"]
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "x", "--max-subagents", bad])
    with pytest.raises(SystemExit):  # the eval runner keeps sub-agents off
        build_parser().parse_args(["eval", "suite", "--no-subagents"])
    for command in ("acp", "mcp-serve"):
        assert build_parser().parse_args([command, "--no-subagents"]).subagents is False
