"""`gemma-agent mcp-serve`: the agent as an MCP server on stdio (the `mcp` package), so that
another agent or an editor can hand it a task: one tool, ``run_task(task, workspace)``, runs the
task in a workspace and returns the final answer, with a progress notification per step (tool
calls by name; a sub-agent's as ``explore#1 › read_file``) while it works. The MCP servers
configured for gemma-agent start for each task (the project's only once trusted: ``--trust-mcp``),
their problems sent as log warnings. A cancelled request cancels the run (the partial turn is
kept in the workspace's session log). Approvals: ``--approval`` (default ``auto``); nobody is
asked, so a call the policy would ask about (a sub-agent's too) is denied and the model reads
why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context

from ..agent import Engine
from ..events import (
    RunFinished,
    RunStarted,
    SubagentEvent,
    ToolCallStarted,
    TurnFinished,
    agent_label,
)


def build_server(args: argparse.Namespace, engine: Any) -> Any:
    """The MCP server (``mcp.server.mcpserver.MCPServer``) around agents on ``engine`` (an
    engine, or an awaitable of one)."""
    from mcp.server.mcpserver import MCPServer

    from ..tools import start_mcp_servers
    from .app import build_agent

    server: Any = MCPServer("gemma-agent", instructions="A Gemma 4 coding agent.")

    @server.tool(name="run_task")
    async def run_task(task: str, ctx: Context, workspace: str = ".") -> str:  # type: ignore[type-arg]
        """Run a coding task with the Gemma agent in a workspace folder and return its final
        answer (it reads, edits and runs things there).

        Args:
            task: What to do, in words.
            workspace: The folder to work in (default: the server's folder).
        """
        folder = _folder(workspace)
        eng = await engine if asyncio.isfuture(engine) else engine
        # The MCP servers configured for gemma-agent (the project's once trusted), per task.
        mcp, notices, _ = await start_mcp_servers(
            folder, trust=bool(getattr(args, "trust_mcp", None))
        )
        for notice in notices:
            await ctx.warning(notice)
        try:
            agent = build_agent(
                args, eng, folder, lambda tools: [*tools, *mcp.tools()], approval="auto"
            )
        except BaseException:
            await mcp.aclose()
            raise
        finished: RunFinished | None = None
        session = ""
        sent = 0  # progress only grows: one more per notification

        async def progress(message: str) -> None:
            nonlocal sent
            sent += 1
            await ctx.report_progress(sent, None, message)

        try:
            async with contextlib.aclosing(agent.stream(task)) as events:
                async for event in events:
                    if isinstance(event, RunStarted):
                        session = event.session_id
                    elif isinstance(event, ToolCallStarted):
                        await progress(f"step {event.step}: {event.call.name}")
                    elif isinstance(event, TurnFinished):
                        await progress(f"step {event.step} done")
                    elif isinstance(event, SubagentEvent):
                        if isinstance(event.event, ToolCallStarted):
                            who = agent_label(event.agent)
                            await progress(f"{who} › {event.event.call.name}")
                    elif isinstance(event, RunFinished):
                        finished = event
        finally:
            try:
                await agent.aclose()
            finally:
                await mcp.aclose()
        if finished is None or finished.reason != "final_answer":
            reason = finished.reason if finished else "no result"
            error = finished.error if finished else None
            raise RuntimeError(f"the run stopped ({reason}): {error or reason}; session {session}")
        return str(finished.output)

    return server


def run_mcp_serve(args: argparse.Namespace, *, engine: Engine | None = None) -> int:
    """Entry point of ``gemma-agent mcp-serve``. ``engine`` overrides the CLI's (tests)."""
    import os

    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")

    async def main() -> None:
        from ..agent import create_engine

        started: asyncio.Task[Any] = asyncio.ensure_future(
            create_engine(args) if engine is None else _given(engine)
        )
        try:
            await build_server(args, started).run_stdio_async()
        finally:
            if not started.done():
                started.cancel()
            await asyncio.wait({started})
            if engine is None and not started.cancelled() and started.exception() is None:
                await started.result().aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    return 0


def _folder(workspace: str) -> Path:
    return Path(workspace).expanduser().resolve()


async def _given(engine: Engine) -> Engine:
    return engine
