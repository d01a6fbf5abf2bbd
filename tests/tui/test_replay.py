"""`gemma-agent replay`: real session logs and eval trajectories, read back without a write and
shown read-only in the real Textual app under Pilot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gemma_agent.agent import ModelTurn, SavedSession, UserMessage, read_session
from gemma_agent.agent.compaction import ClearOldToolResults
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.cli import main
from gemma_agent.errors import ConfigError
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite
from gemma_agent.evals.solvers import AgentSolver
from gemma_agent.events import HistoryCompacted, RunFinished, RunStarted, Usage
from gemma_agent.tui.blocks import CompactionMarker, ThinkingBlock, ToolCard, UserBlock
from gemma_agent.tui.replay import ReplayApp
from textual.widgets import Input

from ..evals.helpers import adder_suite
from .harness import call, make_agent

SIZE = (120, 60)


async def record_session(tmp_path: Path) -> Path:
    """A real session: thinking, a read and a write_file round, a compaction, then a second
    run that rewrites the file."""
    (tmp_path / "notes.txt").write_text("say hi loudly\n" * 200)  # worth clearing
    outputs = [
        "<|channel>thought\nI will read the notes first.<channel|>"
        + call("read_file", path="notes.txt"),
        "<|channel>thought\nThe notes want a greeting; write it.<channel|>"
        + call("write_file", content='print("hi")\n', path="greet.py"),
        "<|channel>thought\nWritten.<channel|>I wrote `greet.py`.",
        "<|channel>thought\nLouder means upper case.<channel|>"
        + call("write_file", content='print("HI!")\n', path="greet.py"),
        "<|channel>thought\nDone.<channel|>`greet.py` now shouts.",
    ]
    compactor = ClearOldToolResults(keep_turns=0, min_tokens=0)
    agent, engine = make_agent(tmp_path, outputs, compactor=compactor)
    async with agent:
        first = await agent.run("Write greet.py as the notes say")
        assert first.reason == "final_answer"
        sid = first.session_id
        assert await agent.compact(None, session_id=sid) is not None
        second = await agent.run("Make it louder", session_id=sid)
        assert second.reason == "final_answer"
        path = agent.session_file(sid)
    engine.assert_complete()
    return Path(path)


def kinds(saved: SavedSession) -> list[str]:
    return [type(e).__name__ for e in saved.entries]


async def test_read_session_is_read_only_and_in_log_order(tmp_path: Path) -> None:
    path = await record_session(tmp_path)
    before, stat = path.read_bytes(), os.stat(path)
    saved = read_session(path)
    assert path.read_bytes() == before and os.stat(path).st_mtime_ns == stat.st_mtime_ns

    shown = [k for k in kinds(saved) if k not in ("Usage", "RunStarted")]
    assert shown == [
        "UserMessage", "ModelTurn", "ModelTurn", "ModelTurn", "RunFinished",
        "HistoryCompacted",
        "UserMessage", "ModelTurn", "ModelTurn", "RunFinished",
    ]  # fmt: skip
    compaction = next(e for e in saved.entries if isinstance(e, HistoryCompacted))
    assert compaction.tier == "clear_tool_results" and compaction.dropped
    assert [e.task for e in saved.events if isinstance(e, RunStarted)] == [
        "Write greet.py as the notes say",
        "Make it louder",
    ]
    assert all(
        isinstance(e, Usage | RunStarted | RunFinished | HistoryCompacted) for e in saved.events
    )
    # The history is the one a resume continues from: the first read's result was cleared.
    first_turn = next(m for m in saved.history if isinstance(m, ModelTurn))
    assert "say hi loudly" not in str(first_turn.tool_results[0].content)
    replayed = next(e for e in saved.entries if isinstance(e, ModelTurn))
    assert "say hi loudly" in str(replayed.tool_results[0].content)  # as the model saw it then
    # By id, from a workspace's sessions folder (the default place of the logs).
    workspace = tmp_path / "project"
    sessions = workspace / ".gemma-agent" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / path.name).write_bytes(before)
    assert read_session(saved.session_id, workspace=workspace).entries == saved.entries


async def test_replay_session_all_at_once_and_step_by_step(tmp_path: Path) -> None:
    path = await record_session(tmp_path)
    before, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    app = ReplayApp(read_session(path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        total = len(app.steps)
        assert total == 10 and app.position == total
        footer = str(app.footer.render())
        assert f"all {total} steps" in footer and "←/→ step" in footer
        text = app.rendered_text()
        # The reasoning, shown in full.
        assert "I will read the notes first." in text and "Louder means upper case." in text
        # Tool cards with the write_file diffs: a new file, then a change against it.
        cards = [b for b in app.visible_blocks() if isinstance(b, ToolCard)]
        assert [c.call.name for c in cards] == ["read_file", "write_file", "write_file"]
        assert all(c.status == "done" for c in cards)
        assert cards[1].diff is not None and '+print("hi")' in cards[1].diff
        assert cards[2].diff is not None
        assert '-print("hi")' in cards[2].diff and '+print("HI!")' in cards[2].diff
        assert '+print("HI!")' in text and "greet.py now shouts." in text
        assert "· 36 tokens\n" in text  # the first turn's thinking tokens (no made-up duration)
        assert "compacted (clear_tool_results)" in text
        assert "Finished with a final answer after 3 steps" in text
        # Every step is on screen.
        assert all(view.display for view in app.views)

        # Step by step: the first step, then forward and back.
        await pilot.press("s")
        assert app.position == 1
        assert [view.display for view in app.views] == [True] + [False] * (total - 1)
        assert isinstance(app.visible_blocks()[0], UserBlock)
        assert "step 1/10 · task" in str(app.footer.render())
        await pilot.press("right", "right")
        assert app.position == 3
        assert "step 3/10 · model turn 2: write_file" in str(app.footer.render())
        assert "I wrote greet.py." not in app.rendered_text()
        await pilot.press("n")
        assert "I wrote greet.py." in app.rendered_text()
        await pilot.press("left", "p")
        assert app.position == 2 and "model turn 1: read_file" in str(app.footer.render())
        await pilot.press("left", "left", "left")
        assert app.position == 1  # never below the first step
        for _ in range(5):
            await pilot.press("right")
        assert "step 6/10 · compaction (clear_tool_results)" in str(app.footer.render())
        marker = app.visible_blocks()[-1]
        assert isinstance(marker, CompactionMarker) and marker.display
        marker.focus()
        await pilot.press("enter")
        assert marker.expanded
        assert marker.event.dropped[0].description in app.rendered_text()
        await pilot.press("a")
        assert app.position == total and all(view.display for view in app.views)

        # Thinking folds and unfolds.
        await pilot.press("t")
        think = next(b for b in app.visible_blocks() if isinstance(b, ThinkingBlock))
        assert think.display_mode == "collapsed"
        folded = app.rendered_text()
        assert "▾ ✻" not in folded and "▸ ✻ Louder means upper case. · 32 tokens" in folded
        await pilot.press("t")
        assert think.display_mode == "full" and "▾ ✻" in app.rendered_text()

        # Read-only: the prompt takes nothing, and says why.
        prompt = app.query_one("#replay-prompt", Input)
        assert prompt.disabled and "Read-only replay" in prompt.placeholder
        assert f"--resume {app.saved.session_id}" in prompt.placeholder
        await pilot.click("#replay-prompt")
        await pilot.press("h", "i", "enter")
        assert prompt.value == "" and app.position == total
        await pilot.press("q")
    assert app.return_code == 0
    assert path.read_bytes() == before and os.stat(path).st_mtime_ns == mtime


async def test_replay_an_eval_trajectory(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        [
            call("read_file", path="calc.py"),
            "<|channel>thought\nadd must return the sum.<channel|>"
            + call("write_file", content="def add(a, b):\n    return a + b\n", path="calc.py"),
            "add now returns a + b.",
        ]
    )
    out = tmp_path / "run"
    suite = load_suite(str(adder_suite(tmp_path / "suite", 1)))
    solver = AgentSolver(
        engine, trajectories=out / "trajectories", agent_options={"thinking": True}
    )
    summary = await run_suite(
        suite, list(suite.tasks), solver, EvalOptions(output=out, progress=False), {"suite": "a"}
    )
    assert summary["passed"] == 1
    trajectory = out / "trajectories" / "add-00-s0.jsonl"
    before = trajectory.read_bytes()

    saved = read_session(trajectory)
    assert isinstance(saved.entries[0], UserMessage)
    app = ReplayApp(saved)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        cards = [b for b in app.visible_blocks() if isinstance(b, ToolCard)]
        assert [c.call.name for c in cards] == ["read_file", "write_file"]
        assert cards[1].diff is not None and "+    return a + b" in cards[1].diff
        text = app.rendered_text()
        assert "add must return the sum." in text and "add now returns a + b." in text
        assert "trajectories/add-00-s0.jsonl" in str(app.query_one("#replay-head").render())
        await pilot.press("s")
        assert "step 1/" in str(app.footer.render())
    assert trajectory.read_bytes() == before

    # The run's folder is not a log: the error names one that is.
    with pytest.raises(ConfigError, match=r"add-00-s0\.jsonl"):
        read_session(out)


def test_missing_or_corrupt_logs_fail_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "No session log at" in capsys.readouterr().err
    assert main(["replay", "20250101-000000-abcdef", "--workspace", str(tmp_path)]) == 2
    assert ".gemma-agent/sessions/20250101-000000-abcdef.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "meta", "session_id": "x"}\n{not json\n{"type": "meta"}\n')
    assert main(["replay", str(bad)]) == 2
    assert "corrupt at line 2" in capsys.readouterr().err
    other = tmp_path / "results.jsonl"
    other.write_text('{"task_id": "a", "passed": true}\n')
    assert main(["replay", str(other)]) == 2
    assert "holds no session records" in capsys.readouterr().err
