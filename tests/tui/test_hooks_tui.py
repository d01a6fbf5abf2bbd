"""Hooks in the TUI: the project's hook set is asked about once (a modal listing its commands;
the answer is remembered per project), hook outcomes are notice lines in the transcript, and
the status bar counts the running background processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.agent.hooks import hook_trust_request, load_hooks
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock
from gemma_agent.tui.chrome import StatusInfo, status_text
from gemma_agent.tui.config import TuiSettings
from gemma_agent.tui.screens import HookTrustScreen

from .harness import call, fixed_clock, send, wait_for, wait_idle

pytestmark = pytest.mark.timeout(120)

GUARD = "cat >/dev/null; echo 'shell is off today' >&2; exit 2"


def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    ws = tmp_path / "ws"
    (ws / ".gemma-agent").mkdir(parents=True)
    hook = {"type": "command", "command": GUARD}
    settings = {"hooks": {"PreToolUse": [{"matcher": "run_shell", "hooks": [hook]}]}}
    (ws / ".gemma-agent" / "settings.json").write_text(json.dumps(settings))
    return ws


def app_for(ws: Path, outputs: list[str], **tools: Any) -> tuple[GemmaApp, AgentBackend]:
    hooks, notices = load_hooks(ws, ask=True)  # as launch.py does for the TUI
    agent = Agent(
        engine=ScriptedEngine(outputs),
        tools=coding_tools(sandbox="none", **tools),
        workspace=ws,
        sessions_dir=ws / ".sessions",
        fsync=False,
        hooks=hooks,
    )
    backend = AgentBackend(agent, notices=notices, hook_trust=hook_trust_request(ws, hooks))
    app = GemmaApp(backend=backend, settings=TuiSettings(), workspace=ws, clock=fixed_clock)
    return app, backend


def notes(app: GemmaApp) -> list[str]:
    return [b.message for b in app.blocks() if isinstance(b, NoticeBlock)]


async def test_trusting_the_project_hooks_in_the_modal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = project(tmp_path, monkeypatch)
    app, _ = app_for(ws, [call("run_shell", command="echo hello"), "ok"])
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HookTrustScreen))
        shown = str(app.screen.query_one("#hook-commands").render())
        assert f"PreToolUse [run_shell]: {GUARD}" in shown
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, HookTrustScreen)
        await send(pilot, "say hello")
        await wait_idle(pilot)
        assert any(
            n.startswith("PreToolUse hook ") and "blocked: shell is off today" in n
            for n in notes(app)
        ), notes(app)
    # Remembered: the next start asks nothing and runs the hooks.
    app, _ = app_for(ws, [call("run_shell", command="echo hello"), "ok"])
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, HookTrustScreen)
        await send(pilot, "again")
        await wait_idle(pilot)
        assert any("blocked: shell is off today" in n for n in notes(app))


async def test_declining_the_project_hooks_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = project(tmp_path, monkeypatch)
    app, _ = app_for(ws, [call("run_shell", command="echo hello"), "ok"])
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HookTrustScreen))
        await pilot.press("n")
        await pilot.pause()
        await send(pilot, "say hello")
        await wait_idle(pilot)
        assert not any("shell is off today" in n for n in notes(app))
        assert any("hooks are not run" in n for n in notes(app))
    app, _ = app_for(ws, ["ok"])
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        assert not isinstance(app.screen, HookTrustScreen)  # not asked again
        assert any("you declined this set" in n for n in notes(app))


async def test_status_bar_counts_running_background_processes(tmp_path: Path) -> None:
    outputs = [
        call("run_shell", command="sleep 4250", background=True),
        "Started.",
        call("shell_kill", id="bg1"),
        "Stopped.",
    ]
    app, _ = app_for(tmp_path, outputs, background=True)
    async with app.run_test(size=(140, 40)) as pilot:
        assert app.status.info.processes == 0
        await send(pilot, "start it")
        await wait_idle(pilot)
        await wait_for(pilot, lambda: app.status.info.processes == 1)
        assert "⚙ 1 bg" in str(app.status.render())
        await send(pilot, "stop it")
        await wait_idle(pilot)
        await wait_for(pilot, lambda: app.status.info.processes == 0)
    assert "bg" not in status_text(StatusInfo()).plain
