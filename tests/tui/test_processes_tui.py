"""Background processes in the TUI: `/processes` lists them; leaving the app kills them (ps)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock
from gemma_agent.tui.config import TuiSettings

from .harness import call, fixed_clock, send, wait_idle

pytestmark = pytest.mark.timeout(120)


def sleeping() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("sleep 4260")]


async def test_processes_listed_and_killed_when_the_app_leaves(tmp_path: Path) -> None:
    command = "echo server up; sleep 4260"
    engine = ScriptedEngine([call("run_shell", command=command, background=True), "Running."])
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none", background=True),
        workspace=tmp_path,
        sessions_dir=tmp_path / ".sessions",
        fsync=False,
    )
    app = GemmaApp(
        backend=AgentBackend(agent), settings=TuiSettings(), workspace=tmp_path, clock=fixed_clock
    )
    async with app.run_test(size=(110, 40)) as pilot:
        await send(pilot, "/processes")
        assert [b.message for b in app.blocks() if isinstance(b, NoticeBlock)][-1] == (
            "No background process."
        )
        await send(pilot, "start the server")
        await wait_idle(pilot)
        assert sleeping()
        await send(pilot, "/processes")
        text = [b.message for b in app.blocks() if isinstance(b, NoticeBlock)][-1]
        assert "**bg1** · running" in text and command in text and "server up" in text
    assert not sleeping(), "leaving the app kills the background processes"


async def test_a_tick_during_teardown_finds_no_chrome_and_does_nothing(tmp_path: Path) -> None:
    """The tick interval can fire once more while the app removes its screen (seen in CI)."""
    agent = Agent(
        engine=ScriptedEngine([]),
        tools=coding_tools(sandbox="none", background=True),
        workspace=tmp_path,
        sessions_dir=tmp_path / ".sessions",
        fsync=False,
    )
    app = GemmaApp(
        backend=AgentBackend(agent), settings=TuiSettings(), workspace=tmp_path, clock=fixed_clock
    )
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_idle(pilot)
        await app.screen.query("StatusBar, EngineProgress").remove()
        app.tick()
