"""The MCP servers an editor passes with session/new and session/load (``mcpServers``): started
with the session (in parallel, through ``gemma_agent.tools.MCPServers``), their tools added to
the session's agent (named ``NAME__tool``, approved like any tool), stopped with the session.

stdio entries (a command, its args, variables added to MCP's minimal default environment; run
in the session's folder) and streamable-HTTP entries (``type: "http"``: a URL and headers) are
supported; SSE and ACP-transport entries are not (the capabilities say so): each is a notice,
as is a server that does not start. The session opens anyway, without that server's tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acp.schema import HttpMcpServer, McpServerStdio

from ..tools import MCPServer, MCPServers


def servers(entries: Sequence[Any] | None, workspace: Path) -> tuple[list[MCPServer], list[str]]:
    """The servers of the entries, not started, and a notice per entry that cannot be used."""
    out: list[MCPServer] = []
    notices: list[str] = []
    for entry in entries or ():
        name = str(getattr(entry, "name", "") or "mcp")
        if isinstance(entry, McpServerStdio):
            env = {v.name: v.value for v in entry.env} or None
            server = MCPServer(
                entry.command, entry.args, name=name, env=env, cwd=workspace, prefix=f"{name}__"
            )
            out.append(server)
        elif isinstance(entry, HttpMcpServer):
            headers = {h.name: h.value for h in entry.headers}
            out.append(MCPServer(url=entry.url, headers=headers, name=name, prefix=f"{name}__"))
        else:
            kind = getattr(entry, "type", None) or type(entry).__name__
            notices.append(
                f"MCP server {name!r} not started: its transport ({kind}) is not supported "
                "(stdio and http are)"
            )
    return out, notices


async def start(entries: Sequence[Any] | None, workspace: Path) -> tuple[MCPServers, list[str]]:
    """Start the entries' servers: ``(servers, notices)``; nothing here raises for a server
    that does not start. Stop them with ``await servers.aclose()``."""
    built, notices = servers(entries, workspace)
    group = MCPServers(built)
    if built:
        notices += await group.start()
    return group, notices
