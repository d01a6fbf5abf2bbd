"""`gemma-agent mcp-serve` driven by the `mcp` package's client in a real subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

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
