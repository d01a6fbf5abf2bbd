"""`gemma-agent run` (headless) on ScriptedEngine: --json lines, rich output, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from gemma_agent import ScriptedEngine, tool
from gemma_agent.cli import build_parser
from gemma_agent.headless import run_headless

from ..agent.helpers import call


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def parse(*argv: str) -> object:
    return build_parser().parse_args(list(argv))


def test_json_mode_prints_one_event_per_line(tmp_path: Path) -> None:
    engine = ScriptedEngine([call("echo", text="hi"), "Done: hi"])
    out = io.StringIO()
    args = parse("run", "say hi", "--json", "--workspace", str(tmp_path))
    code = run_headless(args, engine=engine, tools=[echo], out=out)  # type: ignore[arg-type]
    assert code == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    kinds = [x["kind"] for x in lines]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    for k in ("tool_call_started", "tool_call_finished", "usage", "turn_finished", "text_delta"):
        assert k in kinds
    finished = next(x for x in lines if x["kind"] == "tool_call_finished")
    assert finished["call"]["name"] == "echo" and finished["result"]["content"] == "hi"
    assert lines[-1]["reason"] == "final_answer" and lines[-1]["output"] == "Done: hi"


def test_stop_gives_nonzero_exit_and_one_line_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = ScriptedEngine([call("echo", text=str(i)) for i in range(2)])
    out = io.StringIO()
    args = parse("run", "loop", "--json", "--max-steps", "2", "--workspace", str(tmp_path))
    code = run_headless(args, engine=engine, tools=[echo], out=out)  # type: ignore[arg-type]
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_steps" in err[0]


def test_rich_output_and_resume(tmp_path: Path) -> None:
    engine = ScriptedEngine([call("echo", text="hi"), "The answer."])
    out = io.StringIO()
    code = run_headless(
        parse("run", "task", "--workspace", str(tmp_path)), engine=engine, tools=[echo], out=out
    )  # type: ignore[arg-type]
    text = out.getvalue()
    assert code == 0 and "▶ echo" in text and "The answer." in text and "final_answer" in text
    (sid,) = [p.stem for p in (tmp_path / ".gemma-agent" / "sessions").glob("*.jsonl")]
    engine2 = ScriptedEngine(["Again."])
    out2 = io.StringIO()
    args = parse("run", "more", "--resume", sid, "--json", "--workspace", str(tmp_path))
    assert run_headless(args, engine=engine2, tools=[echo], out=out2) == 0  # type: ignore[arg-type]
    first = json.loads(out2.getvalue().splitlines()[0])
    assert (
        first["kind"] == "run_started" and first["resumed"] is True and first["session_id"] == sid
    )
    assert "The answer." in engine2.requests[0].prompt_text


def test_missing_task_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_headless(parse("run")) == 2  # type: ignore[arg-type]
    assert "give a task" in capsys.readouterr().err
