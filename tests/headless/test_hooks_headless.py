"""`gemma-agent run` and the project's hooks: not run until trusted (--trust-hooks)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.cli import build_parser
from gemma_agent.headless import run_headless

from ..agent.helpers import call


def _run(ws: Path, *flags: str) -> list[dict[str, object]]:
    out = io.StringIO()
    args = build_parser().parse_args(["run", "go", "--json", "--workspace", str(ws), *flags])
    engine = ScriptedEngine([call("run_shell", command="echo hello"), "done"])
    assert run_headless(args, engine=engine, out=out) == 0
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_project_hooks_need_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    ws = tmp_path / "ws"
    (ws / ".gemma-agent").mkdir(parents=True)
    hook = {"type": "command", "command": "echo 'shell is off today' >&2; exit 2"}
    settings = {"hooks": {"PreToolUse": [{"matcher": "run_shell", "hooks": [hook]}]}}
    (ws / ".gemma-agent" / "settings.json").write_text(json.dumps(settings))

    events = _run(ws)
    done = next(e for e in events if e["kind"] == "tool_call_finished")
    assert "hello" in json.dumps(done["result"])  # the untrusted hook did not run
    assert any("hooks" in str(e.get("message")) and "--trust-hooks" in str(e.get("message"))
               for e in events if e["kind"] == "notice")  # fmt: skip

    events = _run(ws, "--trust-hooks")
    done = next(e for e in events if e["kind"] == "tool_call_finished")
    assert "shell is off today" in json.dumps(done["result"])
    (ran,) = [e for e in events if e["kind"] == "hook_ran"]  # the outcome, typed, in --json
    assert ran == {"kind": "hook_ran", "event": "PreToolUse", "command": hook["command"],
                   "outcome": "blocked", "message": "shell is off today", "step": 1}  # fmt: skip
    events = _run(ws)  # remembered
    done = next(e for e in events if e["kind"] == "tool_call_finished")
    assert "shell is off today" in json.dumps(done["result"])
