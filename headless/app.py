"""`gemma-agent run "task"`: one task, headless.

On a terminal, thinking, tool calls and the answer are rendered with rich; with ``--json`` every
event is one JSON object per line with a snake_case ``kind`` (``run_started``, ``text_delta``,
``tool_call_started``, ``tool_call_finished``, ``usage``, ``run_finished``, ...). Exit status 0
on a final answer; otherwise non-zero with a one-line reason on stderr (130 when interrupted).

Sub-agents (the task tool; on unless ``--no-subagents``): on a terminal each child's tool calls,
failures, warnings and end are indented lines (``  ↳ explore#1 read_file path="src/x.py"``), its
thinking and text are left out (its report is the task call's result); with ``--json`` its
events are ``subagent`` objects with ``agent`` (its path), ``call_id`` (the task call) and the
``event`` nested. A child's approval request is asked at the terminal saying which child asks;
without a terminal it is denied, as the run's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, TextIO

from ..agent import Engine
from ..errors import ConfigError
from ..events import (
    ApprovalDecision,
    ApprovalRequested,
    Event,
    HistoryCompacted,
    HookRan,
    Notice,
    PlanUpdated,
    RunFinished,
    RunStarted,
    SubagentEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
    agent_label,
    event_to_dict,
)

EXIT_OK, EXIT_STOPPED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_headless(
    args: argparse.Namespace,
    *,
    engine: Engine | None = None,
    tools: list[Any] | None = None,
    out: TextIO | None = None,
) -> int:
    """Entry point of ``gemma-agent run``. ``engine``/``tools`` override the CLI's (tests)."""
    out = out or sys.stdout
    task = getattr(args, "task", None)
    resume = getattr(args, "resume", None)
    if not task and not resume:
        print("gemma-agent run: give a task, or --resume ID to continue a session", file=sys.stderr)
        return EXIT_USAGE
    # stdout carries the answer (or, with --json, only the events): engine logs go to stderr.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its INFO lines drown the run
    holder: dict[str, Any] = {}
    try:
        return asyncio.run(_main(args, engine, tools, out, holder))
    except KeyboardInterrupt:
        sid = holder.get("session_id")
        hint = f"; continue with: gemma-agent run --resume {sid}" if sid else ""
        print(f"gemma-agent: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _main(
    args: argparse.Namespace,
    engine: Engine | None,
    tools: list[Any] | None,
    out: TextIO,
    holder: dict[str, Any],
) -> int:
    from ..agent import Agent, load_media

    # Bad --image/--audio paths fail now, before an engine is started for nothing.
    media = [load_media(p) for p in [*getattr(args, "image", []), *getattr(args, "audio", [])]]
    own = engine is None
    if engine is None:
        from ..agent import create_engine

        engine = await create_engine(args)
    mcp: Any = None
    mcp_notices: list[str] = []
    agent: Any = None
    try:
        if tools is None:  # the built-in tools and those of the configured MCP servers
            from ..tools import coding_tools, start_mcp_servers, web_tools

            mcp, mcp_notices, _ = await start_mcp_servers(
                getattr(args, "workspace", None) or ".",
                trust=bool(getattr(args, "trust_mcp", None)),
            )
            tools = [*coding_tools(background=True), *web_tools(), *mcp.tools()]
        from ..agent import load_hooks

        hooks, hook_notices = load_hooks(
            getattr(args, "workspace", None) or ".",
            trust=bool(getattr(args, "trust_hooks", None)),
        )
        mcp_notices += hook_notices
        approval = getattr(args, "approval", None) or "auto"
        json_mode = bool(getattr(args, "json", False))
        task: Any = getattr(args, "task", None)
        command = None  # "/name args" of a custom command (.gemma-agent/commands/name.md)
        if isinstance(task, str) and task.startswith("/"):
            from ..agent import expand_command

            command = expand_command(task, getattr(args, "workspace", None) or ".")
        thinking = bool(getattr(args, "thinking", None))
        if command is not None:
            task = command.text
            thinking = thinking if command.thinking is None else command.thinking
        agent = Agent(
            engine=engine,
            tools=tools,
            workspace=getattr(args, "workspace", None) or ".",
            thinking=thinking,
            thinking_budget=getattr(args, "thinking_budget", None),
            tool_choice=getattr(args, "tool_choice", None) or "auto",
            approval=approval,
            on_approval=None if json_mode or not _interactive() else _TerminalAsker(),
            approval_timeout=getattr(args, "approval_timeout", None),
            max_steps=getattr(args, "max_steps", None) or 50,
            mode="plan" if getattr(args, "plan", None) else "default",
            memory=getattr(args, "memory", None) is not False,  # AGENTS.md
            skills=getattr(args, "memory", None) is not False,
            hooks=hooks,
            subagents=getattr(args, "subagents", None) is not False,  # the task tool
            max_subagents=getattr(args, "max_subagents", None) or 4,
        )
        if task and media:
            task = [task, *media]
        view: _View = _JsonView(out) if json_mode else _RichView(out)
        finished: RunFinished | None = None
        # Without a terminal to ask (--json, piped stdin) asked calls are denied at once.
        allowed = command.allowed_tools if command is not None else None
        session = getattr(args, "resume", None)
        async for event in agent.stream(task, session_id=session, allowed_tools=allowed):
            view.show(event)
            if isinstance(event, RunStarted):
                holder["session_id"] = event.session_id
                for note in mcp_notices:  # servers that did not start, untrusted ones
                    view.show(Notice(note, "warning"))
            if isinstance(event, RunFinished):
                finished = event
        if finished is None:
            raise ConfigError("the run ended without a result")
        if finished.reason == "final_answer":
            return EXIT_OK
        print(
            f"gemma-agent: stopped ({finished.reason}): {finished.error or finished.reason}; "
            f"session {holder.get('session_id')}",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    finally:
        if agent is not None:  # its session logs, background processes
            await agent.aclose()
        if mcp is not None:
            await mcp.aclose()
        if own:
            await engine.aclose()


def _interactive() -> bool:
    return sys.stdin.isatty()


async def _ask_on_terminal(request: ApprovalRequested) -> ApprovalDecision:
    from rich.prompt import Prompt

    who = f"{agent_label(request.agent)} asks: " if request.agent else ""  # a sub-agent asks
    question = (
        f"{who}Allow {request.call.name}({_args(request.call.arguments)})? {request.reason} "
        "[y]es / [a]lways / [n]o"
    )
    answer = await asyncio.to_thread(Prompt.ask, question, choices=["y", "a", "n"], default="n")
    decisions: dict[str, ApprovalDecision] = {"y": "allow", "a": "allow_always"}
    return decisions.get(answer, "deny")


class _TerminalAsker:
    """`_ask_on_terminal`, one question at a time: sub-agents running at once may ask together."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None  # made in the run's loop

    async def __call__(self, request: ApprovalRequested) -> ApprovalDecision:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            return await _ask_on_terminal(request)


def _args(arguments: dict[str, Any], limit: int = 100) -> str:
    text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _View:
    def show(self, event: Event) -> None:
        raise NotImplementedError


class _JsonView(_View):
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def show(self, event: Event) -> None:
        self.out.write(json.dumps(event_to_dict(event), ensure_ascii=False, default=repr) + "\n")
        self.out.flush()


class _RichView(_View):
    """Thinking dimmed, tool calls as one line each with their outcome, the answer plain."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=out, highlight=False, soft_wrap=True)
        self._mode: str | None = None

    def _switch(self, mode: str | None) -> None:
        if self._mode in ("thinking", "text") and mode != self._mode:
            self.console.print()
        self._mode = mode

    def show(self, event: Event) -> None:
        c = self.console
        match event:
            case RunStarted():
                c.print(f"[bold]gemma-agent[/] · {event.model} · session {event.session_id}")
            case ThinkingDelta():
                self._switch("thinking")
                c.print(event.text, end="", style="dim italic", markup=False)
            case TextDelta():
                self._switch("text")
                c.print(event.text, end="", markup=False)
            case ToolCallStarted():
                self._switch(None)
                c.print(
                    f"[cyan]▶ {event.call.name}[/]([dim]{_escape(_args(event.call.arguments))}[/])"
                )
            case ToolCallFinished():
                mark = "[red]✗[/]" if event.result.is_error else "[green]✓[/]"
                preview = _escape(_preview(event.result.content))
                c.print(f"  {mark} {event.call.name} [dim]{event.seconds:.2f}s {preview}[/]")
            case ApprovalRequested():
                self._switch(None)
                who = f" ({_escape(agent_label(event.agent))} asks)" if event.agent else ""
                c.print(
                    f"[yellow]? approval needed[/] for {event.call.name}{who}: "
                    f"{_escape(event.reason)}"
                )
            case PlanUpdated():
                self._switch(None)
                marks = {"done": "✓", "in_progress": "▸", "cancelled": "✗", "pending": "·"}
                for item in event.items:
                    c.print(f"  [magenta]{marks[item.status]}[/] {_escape(item.text)}")
            case HistoryCompacted():
                self._switch(None)
                c.print(
                    f"[dim]history compacted ({event.tier}): "
                    f"{event.tokens_before} → {event.tokens_after} tokens[/]"
                )
            case Notice():
                self._switch(None)
                style = {"info": "dim", "warning": "yellow", "error": "red"}[event.level]
                c.print(f"[{style}]{_escape(event.message)}[/]")
            case HookRan():
                self._switch(None)
                style = {"allowed": "dim", "blocked": "yellow"}.get(event.outcome, "red")
                said = f": {event.message}" if event.message else ""
                c.print(
                    f"[{style}]hook {event.event} {_escape(event.command)} "
                    f"{event.outcome}{_escape(said)}[/]"
                )
            case Usage():
                pass  # summed up at the end
            case TurnFinished():
                self._switch(None)
            case RunFinished():
                self._switch(None)
                if (
                    event.reason == "final_answer"
                    and event.output is not None
                    and not isinstance(event.output, str)
                ):
                    c.print(_escape(json.dumps(event_to_dict(event)["output"], indent=2)))
                c.print(f"[dim]— {event.reason} after {event.steps} steps[/]")
            case SubagentEvent():
                self._child(event.agent, event.event)

    def _child(self, agent: str, event: Event) -> None:
        """A sub-agent's event, compactly: its tool calls, failures, warnings and how it ended
        (its thinking and text are its own: its report is the task call's result)."""
        c = self.console
        lead = "  " * max(agent.count("/"), 1) + f"[blue]↳ {_escape(agent_label(agent))}[/]"
        line: str | None = None
        match event:
            case ToolCallStarted():
                line = f"[cyan]{event.call.name}[/] [dim]{_escape(_args(event.call.arguments))}[/]"
            case ToolCallFinished():
                if event.result.is_error:
                    preview = _escape(_preview(event.result.content))
                    line = f"[red]✗[/] {event.call.name} [dim]{preview}[/]"
            case RunFinished():
                style = "dim" if event.reason == "final_answer" else "red"
                said = f": {event.error}" if event.error else ""
                line = f"[{style}]— {event.reason} after {event.steps} steps{_escape(said)}[/]"
            case Notice():
                if event.level != "info":
                    style = "yellow" if event.level == "warning" else "red"
                    line = f"[{style}]{_escape(event.message)}[/]"
            case HookRan():
                if event.outcome != "allowed":
                    said = f": {event.message}" if event.message else ""
                    line = f"[yellow]hook {event.event} {event.outcome}{_escape(said)}[/]"
            case ApprovalRequested() | SubagentEvent():  # not wrapped today; shown if they are
                self.show(event)
            case (
                RunStarted() | ThinkingDelta() | TextDelta() | PlanUpdated() | HistoryCompacted()
                | Usage() | TurnFinished()
            ):  # fmt: skip
                pass
        if line is not None:
            self._switch(None)
            c.print(f"{lead} {line}")


def _preview(content: Any, limit: int = 80) -> str:
    text = (
        content
        if isinstance(content, str)
        else json.dumps(content, ensure_ascii=False, default=repr)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
