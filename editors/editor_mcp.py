"""The MCP servers of an ACP session: those the editor passes with session/new and session/load
(``mcpServers``) and those configured for gemma-agent (the user's ``config.toml``; the project's
``.mcp.json`` and ``.gemma-agent/config.toml`` once trusted, as in the TUI and ``run``: with
``gemma-agent acp --trust-mcp`` or ``/mcp trust``). An editor's server replaces a configured one of
the same name. They start with the session (in parallel, through
``gemma_agent.tools.MCPServers``), their tools are added to the session's agent (named
``NAME__tool``, approved like any tool), and they stop with the session.

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

from ..tools import MCPServer, MCPServers, load_mcp_config


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


async def start(
    entries: Sequence[Any] | None, workspace: Path, *, trust: bool = False
) -> tuple[MCPServers, list[str]]:
    """Start the editor's and the configured servers: ``(servers, notices)``; nothing here
    raises for a bad configuration or a server that does not start. ``trust``: trust the
    project's servers now (remembered). Stop them with ``await servers.aclose()``."""
    passed, notices = servers(entries, workspace)
    config = load_mcp_config(workspace, trust=trust)
    names = {s.name for s in passed}
    configured = [s for s in config.build() if s.name not in names]
    group = MCPServers([*configured, *passed])
    notices = [*config.notices(), *notices]
    if configured or passed:
        notices += await group.start()
    return group, notices
