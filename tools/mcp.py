"""Tools from MCP servers (stdio transport), through the ``mcp`` package (imported lazily).

::

    async with MCPServer("uvx", ["mcp-server-git"], prefix="git_") as server:
        agent = Agent(tools=[*coding_tools(), *server.tools()])

Each server tool becomes a ``Tool`` with the server's JSON Schema (validated before the call),
its description, and ``read_only`` from the server's ``readOnlyHint``. A result flagged as an
error becomes a ``ToolError`` the model reads; structured content is returned as a mapping,
text content as text. Enter and leave the context in the same task (anyio's rule).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Tool, ToolContext, ToolError


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
        return await self.server.call(self.remote_name, dict(args))


class MCPServer:
    """A running MCP server (a subprocess speaking MCP over stdin/stdout)."""

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        prefix: str = "",
        timeout: float | None = None,
        read_only: bool | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.command = command
        self.args = list(args)
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

    async def __aenter__(self) -> MCPServer:
        import anyio
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(
            command=self.command, args=self.args, env=self.env, cwd=self.cwd
        )
        stack = contextlib.AsyncExitStack()
        # The server's stderr goes to a file, not our terminal; shown when start-up fails.
        errlog = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        stack.callback(errlog.close)
        try:
            # Task groups are opened inside these contexts, so the timeout covers only the
            # requests (a cancel scope must not be left while they are open).
            read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            session = await stack.enter_async_context(ClientSession(read, write))
            with anyio.fail_after(self.startup_timeout):
                init = await session.initialize()
                specs = await self._list_tools(session)
        except BaseException as exc:
            errlog_tail = _tail(errlog)
            await stack.aclose()
            if not isinstance(exc, Exception):
                raise
            raise ConfigError(
                f"MCP server {' '.join([self.command, *self.args])!r} did not start: "
                f"{type(exc).__name__}: {exc}"
                + (f"\nits stderr:\n{errlog_tail}" if errlog_tail else "")
            ) from exc
        self._stack = stack
        self._session = session
        info = _field(init, "server_info", "serverInfo")
        self.server_name = str(_field(info, "name", default="") or "")
        self._tools = [MCPTool(self, spec, prefix=self.prefix) for spec in specs]
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack, self._session = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def tools(self) -> list[Tool]:
        if self._session is None and not self._tools:
            raise ConfigError(
                "MCPServer.tools() needs a started server: use `async with MCPServer(...)`"
            )
        return list(self._tools)

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self._session is None:
            raise ToolError(f"the MCP server for {name} is not running")
        try:
            result = await self._session.call_tool(name, arguments)
        except Exception as exc:  # protocol errors, a dead server: the model reads them
            raise ToolError(f"MCP server error from {name}: {type(exc).__name__}: {exc}") from exc
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


def _tail(file: Any, limit: int = 2000) -> str:
    try:
        file.flush()
        file.seek(0)
        return str(file.read())[-limit:].strip()
    except (OSError, ValueError):
        return ""


__all__ = ["MCPServer", "MCPTool"]
