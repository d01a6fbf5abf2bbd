"""Tools from MCP servers (stdio or streamable HTTP), through the ``mcp`` package (lazily).

::

    async with MCPServer("uvx", ["mcp-server-git"], prefix="git_") as server:
        agent = Agent(tools=[*coding_tools(), *server.tools()])

    async with MCPServers(load_mcp_config(workspace).servers) as servers:  # from config
        agent = Agent(tools=[*coding_tools(), *servers.tools()])

Each server tool becomes a ``Tool`` with the server's JSON Schema (validated before the call),
its description, and ``read_only`` from the server's ``readOnlyHint``. A result flagged as an
error becomes a ``ToolError`` the model reads; structured content is returned as a mapping,
text content as text. Enter and leave the context in the same task (anyio's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Tool, ToolContext, ToolError, ToolNotice


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    """Read a field under its mcp 2.x (snake_case) or 1.x (camelCase) name."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


def _tool_name(prefix: str, name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{prefix}{name}")
    if not re.match(r"[A-Za-z_]", cleaned):
        cleaned = f"_{cleaned}"
    return cleaned[:64]


class MCPTool(Tool):
    def __init__(self, server: MCPServer, spec: Any, *, prefix: str = "") -> None:
        self.server = server
        self.remote_name: str = spec.name
        schema = dict(_field(spec, "input_schema", "inputSchema", default={}) or {})
        schema.setdefault("type", "object")
        annotations = _field(spec, "annotations")
        read_only = bool(_field(annotations, "read_only_hint", "readOnlyHint", default=False))
        super().__init__(
            name=_tool_name(prefix, spec.name),
            description=(_field(spec, "description", default="") or "").strip(),
            parameters=schema,
            read_only=read_only if server.read_only is None else server.read_only,
            timeout=server.timeout,
        )

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        was_running = self.server.state == "running"
        try:
            return await self.server.call(self.remote_name, dict(args))
        except ToolError:
            if was_running and self.server.state == "failed":  # it died: say so once
                ctx.emit(ToolNotice(f"MCP server {self.server.label} stopped: {self.server.error}"))
            raise


class MCPServer:
    """A running MCP server: a subprocess speaking MCP over stdin/stdout, or (``url=``) a
    remote one over the streamable HTTP transport (``headers`` go with each request).

    ``state``: "stopped" (not started or left), "running", or "failed" (did not start, or the
    connection broke; ``error`` says why).
    """

    def __init__(
        self,
        command: str = "",
        args: Sequence[str] = (),
        *,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "",
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        prefix: str = "",
        timeout: float | None = None,
        read_only: bool | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if bool(command) == bool(url):
            raise ConfigError("MCPServer: give a command (stdio) or url= (streamable HTTP)")
        self.command = command
        self.args = list(args)
        self.url = url
        self.headers = dict(headers or {})
        self.name = name
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.prefix = prefix
        self.timeout = timeout
        self.read_only = read_only
        self.startup_timeout = startup_timeout
        self._stack: contextlib.AsyncExitStack | None = None
        self._session: Any = None
        self._tools: list[MCPTool] = []
        self.server_name = ""
        self.state: str = "stopped"
        self.error = ""

    @property
    def label(self) -> str:
        """The configured name, else the command line or URL."""
        return self.name or self.url or " ".join([self.command, *self.args])

    async def __aenter__(self) -> MCPServer:
        import anyio
        from mcp import ClientSession

        stack = contextlib.AsyncExitStack()
        # The server's stderr goes to a file, not our terminal; shown when start-up fails.
        errlog = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        stack.callback(errlog.close)
        try:
            # Task groups are opened inside these contexts, so the timeout covers only the
            # requests (a cancel scope must not be left while they are open).
            read, write = await self._transport(stack, errlog)
            session = await stack.enter_async_context(ClientSession(read, write))
            with anyio.fail_after(self.startup_timeout):
                init = await session.initialize()
                specs = await self._list_tools(session)
        except BaseException as exc:
            errlog_tail = _tail(errlog)
            await stack.aclose()
            if not isinstance(exc, Exception):
                raise
            self.state = "failed"
            self.error = f"did not start: {_describe(exc)}"
            raise ConfigError(
                f"MCP server {self.label!r} {self.error}"
                + (f"\nits stderr:\n{errlog_tail}" if errlog_tail else "")
            ) from exc
        self._stack = stack
        self._session = session
        self.state, self.error = "running", ""
        info = _field(init, "server_info", "serverInfo")
        self.server_name = str(_field(info, "name", default="") or "")
        self._tools = [MCPTool(self, spec, prefix=self.prefix) for spec in specs]
        return self

    async def _transport(self, stack: contextlib.AsyncExitStack, errlog: Any) -> tuple[Any, Any]:
        if self.url:
            try:  # mcp 2.x
                from mcp.client.streamable_http import streamable_http_client
                from mcp.shared._httpx_utils import create_mcp_http_client
            except ImportError:  # mcp 1.x
                from mcp.client.streamable_http import (  # type: ignore[attr-defined,unused-ignore]
                    streamablehttp_client,
                )

                streams = await stack.enter_async_context(
                    streamablehttp_client(self.url, headers=self.headers or None)
                )
                return streams[0], streams[1]
            client = create_mcp_http_client(headers=self.headers or None)
            await stack.enter_async_context(client)
            streams = await stack.enter_async_context(
                streamable_http_client(self.url, http_client=client)
            )
            return streams[0], streams[1]
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(
            command=self.command, args=self.args, env=self.env, cwd=self.cwd
        )
        streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        return streams[0], streams[1]

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack, self._session = self._stack, None, None
        if self.state == "running":
            self.state = "stopped"
        if stack is not None:
            with contextlib.suppress(Exception):  # a dead server's transport may complain
                await stack.aclose()

    def tools(self) -> list[Tool]:
        if self._session is None and not self._tools:
            raise ConfigError(
                "MCPServer.tools() needs a started server: use `async with MCPServer(...)`"
            )
        return list(self._tools)

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self._session is None or self.state != "running":
            why = f" ({self.error})" if self.error else ""
            raise ToolError(f"the MCP server {self.label} for {name} is not running{why}")
        try:
            result = await self._session.call_tool(name, arguments)
        except Exception as exc:  # protocol errors, a dead server: the model reads them
            if _connection_lost(exc):
                self.state, self.error = "failed", f"the connection broke: {_describe(exc)}"
                raise ToolError(
                    f"the MCP server {self.label} for {name} stopped ({self.error}); "
                    "its tools are unavailable"
                ) from exc
            raise ToolError(f"MCP server error from {name}: {_describe(exc)}") from exc
        return _convert(result)

    @staticmethod
    async def _list_tools(session: Any) -> list[Any]:
        specs: list[Any] = []
        cursor = None
        for _ in range(100):
            if cursor is None:
                page = await session.list_tools()
            else:
                from mcp.types import PaginatedRequestParams

                page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            specs.extend(page.tools)
            cursor = _field(page, "next_cursor", "nextCursor")
            if not cursor:
                break
        return specs


@dataclass(frozen=True, slots=True)
class MCPStatus:
    """One server of an `MCPServers` group: ``state`` is "starting", "running", "failed" or
    "stopped"; ``detail`` says why it failed; ``tools`` are the names its tools have here."""

    name: str
    state: str
    detail: str = ""
    tools: tuple[str, ...] = ()


class MCPServers:
    """Several MCP servers started together (in parallel, each within ``startup_timeout``, by
    default each server's own) and
    stopped together. A server that does not start is a notice (`start` returns them, `status`
    lists it), never an exception; its tools are simply absent.

    Each server lives in a task of its own (entered and left there, as anyio requires), so
    `start` and `aclose` may run in different tasks of the same event loop.
    """

    def __init__(
        self, servers: Iterable[MCPServer], *, startup_timeout: float | None = None
    ) -> None:
        self.servers = list(servers)
        self.startup_timeout = startup_timeout
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._notes: dict[str, str] = {}  # server label -> why it did not start

    async def start(self) -> list[str]:
        """Start every server; returns one message per server that did not start."""
        return await self._start(self.servers)

    async def add(self, servers: Iterable[MCPServer]) -> list[str]:
        """Start more servers in this group (trusted later): notices as for `start`."""
        added = list(servers)
        self.servers += added
        return await self._start(added)

    async def _start(self, servers: list[MCPServer]) -> list[str]:
        ready = [asyncio.Event() for _ in servers]
        for server in servers:
            server.state = "starting"
        tasks = [
            asyncio.create_task(self._serve(server, event), name=f"mcp {server.label}")
            for server, event in zip(servers, ready, strict=True)
        ]
        self._tasks += tasks

        async def wait(server: MCPServer, event: asyncio.Event, task: asyncio.Task[None]) -> None:
            waiter = asyncio.ensure_future(event.wait())
            limit = self.startup_timeout or server.startup_timeout
            try:
                await asyncio.wait({waiter, task}, timeout=limit, return_when="FIRST_COMPLETED")
            finally:
                waiter.cancel()
            if not event.is_set() and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                server.state = "failed"
                server.error = f"did not start within {limit:g} s"
                self._notes[server.label] = f"MCP server {server.label!r} {server.error}"

        await asyncio.gather(
            *(wait(s, e, t) for s, e, t in zip(servers, ready, tasks, strict=True))
        )
        return [self._notes[s.label] for s in servers if s.label in self._notes]

    async def _serve(self, server: MCPServer, ready: asyncio.Event) -> None:
        try:
            async with server:
                ready.set()
                await self._stop.wait()
        except ConfigError as e:  # did not start: its message names the server and why
            self._notes[server.label] = str(e)
        except Exception as e:  # left uncleanly (it died): the state says so already
            if not ready.is_set():
                server.state, server.error = "failed", f"did not start: {_describe(e)}"
                self._notes[server.label] = f"MCP server {server.label!r} {server.error}"

    def tools(self) -> list[Tool]:
        """The tools of the servers that started (their names carry each server's prefix)."""
        return [t for s in self.servers if s.state == "running" for t in s.tools()]

    def status(self) -> list[MCPStatus]:
        return [
            MCPStatus(
                s.label,
                s.state,
                s.error,
                tuple(t.name for t in s._tools) if s.state != "failed" or s._tools else (),
            )
            for s in self.servers
        ]

    async def aclose(self) -> None:
        """Stop every server (a stdio server's process ends with its stdin)."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> MCPServers:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _convert(result: Any) -> Any:
    texts: list[str] = []
    for block in _field(result, "content", default=[]) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind in ("image", "audio"):
            mime = _field(block, "mime_type", "mimeType", default="?")
            texts.append(
                f"[{kind} {mime}, {len(getattr(block, 'data', '') or '') * 3 // 4:,} bytes]"
            )
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            texts.append(
                getattr(resource, "text", None) or f"[resource {getattr(resource, 'uri', '')}]"
            )
        elif kind == "resource_link":
            texts.append(f"[resource {getattr(block, 'uri', '')}]")
        else:
            texts.append(f"[{kind or 'unknown'} content]")
    text = "\n".join(texts)
    if _field(result, "is_error", "isError", default=False):
        raise ToolError(text or "the MCP tool reported an error")
    structured = _field(result, "structured_content", "structuredContent")
    if isinstance(structured, dict):
        return structured
    return text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _connection_lost(exc: BaseException) -> bool:
    """A transport that is gone (the process died, the stream closed), not a tool's error."""
    import anyio

    if isinstance(exc, BaseExceptionGroup):
        return any(_connection_lost(e) for e in exc.exceptions)
    lost = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)
    return isinstance(exc, lost) or "connection closed" in str(exc).lower()


def _tail(file: Any, limit: int = 2000) -> str:
    try:
        file.flush()
        file.seek(0)
        return str(file.read())[-limit:].strip()
    except (OSError, ValueError):
        return ""


__all__ = ["MCPServer", "MCPServers", "MCPStatus", "MCPTool"]
