"""`gemma-agent eval` gives the agent no task tool unless `--subagents`; with it, a task's agent
hands work to a child on the same engine, inside the task's workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.evals.cli import run_eval

from .helpers import adder_suite

pytestmark = pytest.mark.timeout(180)

TASK = ScriptedEngine.tool_call("task", agent_type="explore", description="look", prompt="look")


def _eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str], *flags: str) -> tuple[dict[str, Any], ScriptedEngine]:  # fmt: skip
    engine = ScriptedEngine(outputs)

    async def fake_engine(_args: Any) -> ScriptedEngine:
        return engine

    monkeypatch.setattr("gemma_agent.agent.engines.factory.create_engine", fake_engine)
    suite = adder_suite(tmp_path / "suite", 1)
    out = tmp_path / f"out{len(flags)}"
    args = build_parser().parse_args(
        ["eval", str(suite), "--output", str(out), "--no-progress", "--workspace",
         str(tmp_path), *flags]
    )  # fmt: skip
    assert run_eval(args) == 0
    return dict(json.loads((out / "summary.json").read_text())["config"]), engine


def test_subagents_are_off_in_evals_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, engine = _eval(tmp_path, monkeypatch, ["Done."])
    assert "subagents" not in config["agent"]
    assert "declaration:task{" not in engine.requests[0].prompt_text

    config, engine = _eval(tmp_path, monkeypatch, [TASK, "Nothing here.", "Done."], "--subagents")
    assert config["agent"]["subagents"] is True
    assert "declaration:task{" in engine.requests[0].prompt_text
    assert "You are an explorer" in engine.requests[1].prompt_text  # the child, same engine
    engine.assert_complete()
