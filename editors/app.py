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
from collections.abc import Callable, Coroutine
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
        subagents=getattr(args, "subagents", None) is not False,  # the task tool
        max_subagents=getattr(args, "max_subagents", None) or 4,
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


EngineFactory = Callable[[argparse.Namespace], Coroutine[Any, Any, Engine]]


class Engines:
    """The one engine the sessions of a connection share, and the editor's model picker over
    it: `switch` stops it and starts another model in its place (every session goes on with
    the new one; one GPU rarely holds two); if that one does not start, the previous model
    starts again. ``engine``: a started engine to use first (tests); ``factory`` starts one
    from the CLI's flags (default: `create_engine`)."""

    def __init__(
        self,
        args: argparse.Namespace,
        engine: Engine | None = None,
        factory: EngineFactory | None = None,
    ) -> None:
        from ..agent import create_engine

        self.args = args
        self.factory: EngineFactory = factory or create_engine
        self.switchable = getattr(args, "engine", None) != "http"  # served elsewhere: fixed
        self.task: asyncio.Task[Engine] = asyncio.create_task(
            self.factory(args) if engine is None else _given(engine), name="gemma-agent-engine"
        )
        self.own = engine is None

    async def get(self) -> Engine:
        return await asyncio.shield(self.task)

    def current(self) -> str | None:
        """The model in use (a preset's or tiny's name where it is one); None while starting."""
        if not self.task.done() or self.task.cancelled() or self.task.exception() is not None:
            return None
        from ..agent import find_preset

        model = self.task.result().info.model
        preset = find_preset(model)
        return preset.name if preset is not None else model

    def choices(self) -> list[tuple[str, str]]:
        """``(name, description)`` of the models to switch to: the presets, then the tiny ones."""
        if not self.switchable:
            return []
        from ..agent import PRESETS

        out = [(p.name, f"{p.hf_id} · {p.size}") for p in PRESETS.values()]
        out.append(("tiny", "random weights, output is noise (wiring checks)"))
        out.append(("tiny-mm", "tiny with random image/audio towers (media checks)"))
        return out

    async def switch(self, model: str) -> Engine:
        """Stop the engine and start ``model`` instead (ConfigError when it cannot be one);
        on failure the previous model is started again and the error raised."""
        from ..agent import model_problem
        from ..errors import ConfigError

        if not self.switchable:
            raise ConfigError("the model is served elsewhere (--engine http): it stays as is")
        problem = model_problem(model)
        if problem is not None:
            raise ConfigError(problem)
        previous = await self.get()
        before = self.current() or previous.info.model
        self.own = True
        await previous.aclose()
        settings = argparse.Namespace(**{**vars(self.args), "model": model, "variant": None})
        self.task = asyncio.create_task(self.factory(settings), name="gemma-agent-engine")
        try:
            await asyncio.wait({self.task})
            engine = self.task.result()
        except Exception as e:
            again = argparse.Namespace(**{**vars(self.args), "model": before})
            self.task = asyncio.create_task(self.factory(again), name="gemma-agent-engine")
            raise ConfigError(f"{model} did not start ({e}); {before} is started again") from e
        self.args = settings
        return engine

    async def aclose(self) -> None:
        if not self.task.done():
            self.task.cancel()
        await asyncio.wait({self.task})
        if self.own and not self.task.cancelled() and self.task.exception() is None:
            await self.task.result().aclose()


def run_acp(
    args: argparse.Namespace,
    *,
    engine: Engine | None = None,
    engine_factory: EngineFactory | None = None,
) -> int:
    """Entry point of ``gemma-agent acp``. ``engine`` overrides the CLI's, ``engine_factory``
    the way the model picker starts engines (tests)."""
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    stdin, stdout = protocol_stdio()
    try:
        asyncio.run(_acp_main(args, engine, engine_factory, stdin, stdout))
    except KeyboardInterrupt:
        return 130
    return 0


async def _acp_main(
    args: argparse.Namespace,
    engine: Engine | None,
    engine_factory: EngineFactory | None,
    stdin: BinaryIO,
    stdout: BinaryIO,
) -> None:
    engines = Engines(args, engine, engine_factory)

    async def factory(workspace: Path, wrap_tools: ToolsHook) -> Agent:
        return build_agent(args, await engines.get(), workspace, wrap_tools)

    reader, writer = await _streams(stdin, stdout)
    try:
        trust = bool(getattr(args, "trust_mcp", None))
        await serve_acp(factory, reader, writer, models=engines, trust_mcp=trust)
    finally:
        await engines.aclose()


async def _given(engine: Engine) -> Engine:
    return engine
