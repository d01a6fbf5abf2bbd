"""`gemma-agent eval` runs no hooks unless `--hooks`: a user-level Stop hook (a real shell
script that records its input) is not run by default and runs in each task with --hooks."""

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


def _eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> dict[str, Any]:
    engine = ScriptedEngine(["Done."])

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
    return dict(json.loads((out / "summary.json").read_text())["config"])


def test_hooks_are_off_in_evals_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    log = tmp_path / "stop.jsonl"
    hook = tmp_path / "stop.sh"
    hook.write_text(f"#!/bin/sh\ncat >> {log}\necho >> {log}\n")
    hook.chmod(0o755)
    settings = tmp_path / "xdg" / "gemma-agent" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [{"command": str(hook)}]}]}}))

    config = _eval(tmp_path, monkeypatch)
    assert not log.exists() and "hooks" not in config
    config = _eval(tmp_path, monkeypatch, "--hooks")
    assert config["hooks"] is True
    (payload,) = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert payload["hook_event_name"] == "Stop" and payload["output"] == "Done."
