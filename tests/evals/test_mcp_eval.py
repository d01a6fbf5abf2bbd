"""`gemma-agent eval` with an MCP server from the configuration (mcp-server-time from PyPI as a
subprocess); the engine is a ScriptedEngine put in place of the factory's."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.evals.cli import run_eval

from ..agent.helpers import call
from .helpers import adder_suite

pytestmark = pytest.mark.timeout(180)


def test_eval_tasks_get_the_configured_server_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user = tmp_path / "xdg" / "gemma-agent" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(
        f'[mcp_servers.time]\ncommand = "{Path(sys.executable).parent}/mcp-server-time"\n'
    )
    engine = ScriptedEngine([call("time__get_current_time", timezone="America/Lima"), "Done."])

    async def fake_engine(_args: Any) -> ScriptedEngine:
        return engine

    monkeypatch.setattr("gemma_agent.agent.engines.factory.create_engine", fake_engine)
    suite = adder_suite(tmp_path / "suite", 1)
    out = tmp_path / "out"
    args = build_parser().parse_args(
        ["eval", str(suite), "--output", str(out), "--no-progress", "--workspace", str(tmp_path)]
    )
    assert run_eval(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["mcp_servers"] == ["time"]
    trajectory = next((out / "trajectories").glob("*.jsonl")).read_text()
    assert "time__get_current_time" in trajectory and "is_dst" in trajectory  # its result
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    assert not [p for p in left if "mcp-server" in " ".join(p.cmdline())]
