"""MCP servers in the TUI: start-up notices, `/mcp`, `/mcp trust`, a call to a real server
(mcp-server-time from PyPI) and the servers stopped when the app leaves."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import psutil
import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.tools import load_mcp_config, start_mcp_servers
from gemma_agent.tools.builtin import coding_tools
from gemma_agent.tui.app import GemmaApp
from gemma_agent.tui.backend import AgentBackend
from gemma_agent.tui.blocks import NoticeBlock, ToolCard
from gemma_agent.tui.config import TuiSettings, load_settings

from .harness import call, fixed_clock, send, wait_for, wait_idle

pytestmark = pytest.mark.timeout(120)
BIN = Path(sys.executable).parent


def notices(app: GemmaApp) -> list[str]:
    return [b.message for b in app.blocks() if isinstance(b, NoticeBlock)]


def _mcp_children() -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "mcp-server" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


async def test_mcp_servers_in_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    ws = tmp_path / "ws"
    (ws / ".gemma-agent").mkdir(parents=True)
    # The project's TOML holds both TUI settings and an MCP server (which waits for trust);
    # the user's file holds a working server and one that crashes on start.
    (ws / ".gemma-agent" / "config.toml").write_text(
        f'approval = "auto"\n[mcp_servers.git]\ncommand = "{BIN / "mcp-server-git"}"\n'
    )
    user = tmp_path / "xdg" / "gemma-agent" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(
        f'[mcp_servers.time]\ncommand = "{BIN / "mcp-server-time"}"\n'
        f'[mcp_servers.broken]\ncommand = "{sys.executable}"\nargs = ["-c", "import sys; '
        "sys.exit('bad key')\"]\n"
    )
    assert load_settings(ws, user_path=user).approval == "auto"  # mcp_servers is not an error

    git = await asyncio.create_subprocess_exec("git", "init", "-q", str(ws))
    assert await git.wait() == 0
    servers, startup, config = await start_mcp_servers(ws)
    engine = ScriptedEngine(
        [
            call("time__get_current_time", timezone="Asia/Kolkata"),
            "Noted.",
            call("git__git_status", repo_path=str(ws)),
            "Clean.",
        ]
    )
    agent = Agent(
        engine=engine,
        tools=[*coding_tools(sandbox="none"), *servers.tools()],
        workspace=ws,
        sessions_dir=tmp_path / ".sessions",
        fsync=False,
    )
    backend = AgentBackend(agent, mcp=servers, mcp_config=config, notices=startup)
    app = GemmaApp(
        backend=backend,
        settings=TuiSettings(),
        workspace=ws,
        clock=fixed_clock,
    )
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        shown = notices(app)
        assert any("'broken'" in n and "bad key" in n for n in shown)
        assert any("(git) are not started" in n for n in shown)
        await send(pilot, "/mcp")
        listing = notices(app)[-1]
        assert "time" in listing and "running" in listing and "time__convert_time" in listing
        assert "broken" in listing and "failed" in listing
        await send(pilot, "what time is it in India?")
        await wait_idle(pilot)
        card = next(b for b in app.blocks() if isinstance(b, ToolCard))
        assert card.call.name == "time__get_current_time"
        assert "Asia/Kolkata" in json.dumps(card.result.content if card.result else "")
        # Trusted now: the project's server starts at once and its tools are the agent's.
        assert "git__git_status" not in agent.registry
        await send(pilot, "/mcp trust")
        await wait_for(pilot, lambda: "Trusted" in notices(app)[-1])
        assert "Trusted the project's MCP servers (git)" in notices(app)[-1]
        await send(pilot, "/mcp")
        listing = notices(app)[-1]
        assert "**git** · running" in listing and "git__git_status" in listing, listing
        await send(pilot, "what is the git status?")
        await wait_idle(pilot)
        card = [b for b in app.blocks() if isinstance(b, ToolCard)][-1]
        assert card.call.name == "git__git_status" and card.result is not None
        assert not card.result.is_error and "Repository status" in str(card.result.content)
        git_decl = "declaration:git__git_status"
        assert git_decl in engine.tokenizer.decode(list(engine.requests[-1].prompt_ids))
        await send(pilot, "/mcp trust")
        await wait_for(pilot, lambda: "No project MCP server waits" in notices(app)[-1])
        assert len(_mcp_children()) >= 2
    # Leaving the app stops every server.
    assert not _mcp_children()
    assert not load_mcp_config(ws).untrusted
