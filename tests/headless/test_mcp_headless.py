"""`gemma-agent run` with MCP servers from the configuration: real servers from PyPI
(mcp-server-time, mcp-server-git) as subprocesses, one that crashes on start, project trust."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.headless import run_headless

from ..agent.helpers import call

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.timeout(120)


def _run(*argv: str, script: list[str]) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    args = build_parser().parse_args(["run", *argv, "--json"])
    code = run_headless(args, engine=ScriptedEngine(script), out=out)
    return code, [json.loads(x) for x in out.getvalue().splitlines()]


def test_run_uses_configured_servers_and_reports_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user = tmp_path / "xdg" / "gemma-agent" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(
        f'[mcp_servers.time]\ncommand = "{BIN / "mcp-server-time"}"\n\n'
        f'[mcp_servers.broken]\ncommand = "{sys.executable}"\nargs = ["-c", "raise SystemExit(4)"]\n'
    )
    ws = tmp_path / "repo"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "notes.md").write_text("x\n")
    (ws / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"git": {"command": str(BIN / "mcp-server-git")}}})
    )

    code, events = _run(
        "what time is it in Tokyo?",
        "--workspace",
        str(ws),
        script=[call("time__get_current_time", timezone="Asia/Tokyo"), "It is late."],
    )
    assert code == 0
    assert events[0]["kind"] == "run_started"
    notices = [str(e["message"]) for e in events if e["kind"] == "notice"]
    assert any("'broken'" in n and "did not start" in n for n in notices)
    assert any("(git) are not started" in n for n in notices)
    done = next(e for e in events if e["kind"] == "tool_call_finished")
    assert "Asia/Tokyo" in json.dumps(done["result"])
    assert not done["result"]["is_error"]  # type: ignore[index]

    # --trust-mcp starts the project's server (and remembers the set).
    code, events = _run(
        "status?",
        "--workspace",
        str(ws),
        "--trust-mcp",
        script=[call("git__git_status", repo_path=str(ws)), "Clean enough."],
    )
    assert code == 0
    done = next(e for e in events if e["kind"] == "tool_call_finished")
    assert "notes.md" in json.dumps(done["result"])
    assert not any("are not started" in str(e.get("message")) for e in events)
    # Every server stopped with the run.
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    assert not [p for p in left if "mcp-server" in " ".join(p.cmdline())]
