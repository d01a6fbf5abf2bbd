"""`gemma-agent mcp-serve` driven by the `mcp` package's client in a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from gemma_agent import Agent
from gemma_agent.agent.messages import ModelTurn, ToolResult
from gemma_agent.agent.session import load_session
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import LoggingMessageNotificationParams

SCRIPT = Path(__file__).with_name("mcp_scripted.py")


async def test_run_task_returns_the_answer_with_progress(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    params = StdioServerParameters(command=sys.executable, args=[str(SCRIPT)], env=env, cwd=ws)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    async with (
        asyncio.timeout(60),
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        assert [t.name for t in tools.tools] == ["run_task"]
        result = await session.call_tool(
            "run_task", {"task": "write x", "workspace": str(ws)}, progress_callback=on_progress
        )
    assert not result.is_error
    assert result.content[0].text == "Wrote x.txt."
    assert (ws / "x.txt").read_text() == "x\n"
    assert any(m and "write_file" in m for _, m in progress)


async def test_a_sub_agents_calls_are_progress_too(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    args = [str(SCRIPT), "subagents"]
    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=ws)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, message))

    async with (
        asyncio.timeout(60),
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool(
            "run_task", {"task": "write x", "workspace": str(ws)}, progress_callback=on_progress
        )
    assert not result.is_error and result.content[0].text == "A helper wrote x.txt."
    assert (ws / "x.txt").read_text() == "x\n"
    messages = [m for _, m in progress]
    assert "step 1: task" in messages and "general#1 › write_file" in messages
    done = [d for d, _ in progress]
    assert done == sorted(set(done))  # progress only grows


async def test_the_configured_mcp_servers_serve_each_task(tmp_path: Path) -> None:
    """The user's server (config.toml) starts for the task; the project's (.mcp.json) does not
    until trusted, and a log warning says so; with --trust-mcp it does."""
    ws = tmp_path / "ws"
    ws.mkdir()
    config = tmp_path / "config" / "gemma-agent"
    config.mkdir(parents=True)
    time_server = Path(sys.executable).parent / "mcp-server-time"
    (config / "config.toml").write_text(
        f'[mcp_servers.time]\ncommand = "{time_server}"\nargs = ["--local-timezone", "UTC"]\n'
    )
    app = Path(__file__).parents[1] / "tools" / "mcp_server_app.py"
    project = {"mcpServers": {"tiny": {"command": sys.executable, "args": [str(app)]}}}
    (ws / ".mcp.json").write_text(json.dumps(project))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}

    async def run_task(*flags: str) -> tuple[list[str], dict[str, ToolResult]]:
        """The warnings logged, and the tool results by name."""
        warnings: list[str] = []

        async def on_log(params: LoggingMessageNotificationParams) -> None:
            warnings.append(str(params.data))

        args = [str(SCRIPT), "mcp", *flags]
        params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=ws)
        async with (
            asyncio.timeout(60),
            stdio_client(params) as (read, write),
            ClientSession(read, write, logging_callback=on_log) as session,
        ):
            await session.initialize()
            result = await session.call_tool("run_task", {"task": "what time?", "workspace": "."})
        assert not result.is_error and result.content[0].text == "Done."
        agent = Agent(workspace=ws, tools=[])
        state = load_session(agent.session_file(agent.sessions()[0]))
        turns = [m for m in state.history if isinstance(m, ModelTurn)]
        return warnings, {r.name: r for t in turns for r in t.tool_results}

    warnings, results = await run_task()
    now = results["time__get_current_time"]
    assert not now.is_error and isinstance(now.content, dict) and now.content["timezone"] == "UTC"
    shout = results.get("tiny__shout")
    assert shout is None or shout.is_error  # no such tool: the model is told so
    assert any("(tiny) are not started" in w and "--trust-mcp" in w for w in warnings), warnings

    warnings, results = await run_task("--trust-mcp")
    assert not results["tiny__shout"].is_error and "HI" in str(results["tiny__shout"].content)
    assert not warnings
