"""The commands: `gemma-agent acp` and `gemma-agent mcp-serve` on stdio.

stdout is the protocol's: before anything else runs, the protocol keeps a duplicate of it and
file descriptor 1 is pointed at stderr, so that a stray print (ours, a tool's, vLLM's engine
process) lands in the editor's log instead of corrupting the stream. The engine starts at once
in the background (a vLLM start takes a while); the first session waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

from .. import Agent
from ..agent import Engine
from .acp_agent import ToolsHook, serve_acp


def build_agent(
    args: argparse.Namespace,
    engine: Engine,
    workspace: Path,
    wrap_tools: ToolsHook | None = None,
    *,
    approval: str = "ask",
) -> Agent:
    """The agent of one session, as the CLI's flags say (approvals default to ``ask``: the
    editor asks the person). ``wrap_tools`` may swap tools (the editor's file system)."""
    from ..agent import load_hooks
    from ..tools import coding_tools, web_tools

    hooks, _ = load_hooks(workspace, trust=bool(getattr(args, "trust_hooks", None)))
    return Agent(
        engine=engine,
        tools=(wrap_tools or list)([*coding_tools(background=True), *web_tools()]),
        workspace=workspace,
        thinking=bool(getattr(args, "thinking", None)),
        thinking_budget=getattr(args, "thinking_budget", None),
        tool_choice=getattr(args, "tool_choice", None) or "auto",
        approval=getattr(args, "approval", None) or approval,
        approval_timeout=getattr(args, "approval_timeout", None),
        max_steps=getattr(args, "max_steps", None) or 50,
        mode="plan" if getattr(args, "plan", None) else "default",
        memory=getattr(args, "memory", None) is not False,
        skills=getattr(args, "memory", None) is not False,
        hooks=hooks,
    )


def protocol_stdio() -> tuple[BinaryIO, BinaryIO]:
    """(stdin, a private duplicate of stdout) as binary files; fd 1 and ``sys.stdout`` now go
    to stderr."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, out


async def _streams(
    stdin: BinaryIO, stdout: BinaryIO
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=50 * 1024 * 1024)  # images arrive inline
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdout)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


def run_acp(args: argparse.Namespace, *, engine: Engine | None = None) -> int:
    """Entry point of ``gemma-agent acp``. ``engine`` overrides the CLI's (tests)."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    stdin, stdout = protocol_stdio()
    try:
        asyncio.run(_acp_main(args, engine, stdin, stdout))
    except KeyboardInterrupt:
        return 130
    return 0


async def _acp_main(
    args: argparse.Namespace, engine: Engine | None, stdin: BinaryIO, stdout: BinaryIO
) -> None:
    from ..agent import create_engine

    own = engine is None
    started: asyncio.Task[Any] = asyncio.create_task(
        create_engine(args) if engine is None else _given(engine), name="gemma-agent-engine"
    )

    async def factory(workspace: Path, wrap_tools: ToolsHook) -> Agent:
        return build_agent(args, await asyncio.shield(started), workspace, wrap_tools)

    reader, writer = await _streams(stdin, stdout)
    try:
        await serve_acp(factory, reader, writer)
    finally:
        if not started.done():
            started.cancel()
        await asyncio.wait({started})
        if own and not started.cancelled() and started.exception() is None:
            await started.result().aclose()


async def _given(engine: Engine) -> Engine:
    return engine
