"""MCP servers from configuration: ``.mcp.json`` and ``[mcp_servers.NAME]`` TOML tables.

Read, in this order (a later definition of the same name wins):

1. ``~/.config/gemma-agent/config.toml`` (``$XDG_CONFIG_HOME``): the user's servers, trusted;
2. ``<workspace>/.mcp.json`` (``{"mcpServers": {NAME: {...}}}``, the format several agents read);
3. ``<workspace>/.gemma-agent/config.toml``.

The project's servers (2 and 3) come with the repository, so they start only once the user has
trusted that exact set: ``MCPConfig.trust()`` remembers a fingerprint of it per project in
``~/.config/gemma-agent/trusted-projects.json``; a changed set asks again. A server entry::

    [mcp_servers.time]
    command = "mcp-server-time"          # stdio: a command, its args, env, cwd
    args = ["--local-timezone", "UTC"]
    env = { TZ = "UTC" }                 # added to a minimal default environment
    # url = "https://example.com/mcp"    # remote: the streamable HTTP transport
    # headers = { Authorization = "Bearer ${MY_TOKEN}" }
    prefix = "time__"                    # default: NAME + "__"
    startup_timeout = 30                 # seconds
    timeout = 60                         # seconds per call
    enabled = true

``${VAR}`` and ``${VAR:-default}`` in strings are replaced from the environment. A broken entry or
file is a problem the caller shows (``MCPConfig.problems``), never an exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .mcp import MCPServer, MCPServers

_KEYS = {
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "type",
    "transport",
    "prefix",
    "startup_timeout",
    "timeout",
    "enabled",
    "read_only",
}


@dataclass(frozen=True)
class MCPServerConfig:
    """One configured server; ``project``: it came from the workspace (needs trust)."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    prefix: str | None = None
    startup_timeout: float = 30.0
    timeout: float | None = None
    read_only: bool | None = None
    enabled: bool = True
    source: str = ""
    project: bool = False

    def server(self, workspace: str | Path) -> MCPServer:
        """The (not yet started) server; a relative ``cwd`` is taken from ``workspace``."""
        cwd = Path(workspace) / self.cwd if self.cwd else Path(workspace)
        return MCPServer(
            self.command,
            self.args,
            url=self.url,
            headers=self.headers,
            name=self.name,
            env=self.env,
            cwd=None if self.url else cwd,
            prefix=self.prefix if self.prefix is not None else f"{self.name}__",
            timeout=self.timeout,
            read_only=self.read_only,
            startup_timeout=self.startup_timeout,
        )

    def fingerprint_data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": self.command,
            "args": list(self.args),
            "env": self.env,
            "cwd": self.cwd,
            "url": self.url,
            "headers": self.headers,
        }


@dataclass
class MCPConfig:
    """What the configuration says: servers to start, project servers waiting for trust, and
    problems (bad files or entries) to show."""

    workspace: Path
    servers: list[MCPServerConfig] = field(default_factory=list)
    untrusted: list[MCPServerConfig] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    trust_store: Path | None = None

    def build(self) -> list[MCPServer]:
        """The servers to start (enabled, and trusted where they come from the project)."""
        return [c.server(self.workspace) for c in self.servers if c.enabled]

    @property
    def fingerprint(self) -> str:
        return project_fingerprint([*self.servers, *self.untrusted])

    def trust(self) -> list[MCPServerConfig]:
        """Trust the project's current server set (remembered); returns the newly trusted."""
        newly, self.untrusted = self.untrusted, []
        self.servers.extend(newly)
        store = self.trust_store or trust_store_path()
        data = _read_json(store)
        entry = data.setdefault(str(self.workspace), {})
        entry["mcp"] = self.fingerprint
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(store)
        return newly

    def notices(self) -> list[str]:
        """Messages for the user: problems, and project servers that wait for trust."""
        out = list(self.problems)
        if self.untrusted:
            names = ", ".join(c.name for c in self.untrusted)
            out.append(
                f"The project's MCP servers ({names}) are not started: they come with the "
                "workspace and run commands on this machine. Trust them with `/mcp trust` in the "
                "TUI or `--trust-mcp` (remembered until the set changes)."
            )
        return out


async def start_mcp_servers(
    workspace: str | Path, *, trust: bool = False, user_config: Path | None = None
) -> tuple[MCPServers, list[str], MCPConfig]:
    """Load the configuration and start its servers in parallel: ``(servers, notices,
    config)``. Nothing here raises for a bad file or a server that does not start: each is a
    notice. Close with ``await servers.aclose()``."""
    config = load_mcp_config(workspace, trust=trust, user_config=user_config)
    notices = config.notices()
    servers = MCPServers(config.build())
    notices += await servers.start()
    return servers, notices, config


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent"


def trust_store_path() -> Path:
    return config_dir() / "trusted-projects.json"


def project_fingerprint(configs: list[MCPServerConfig]) -> str:
    project = sorted(
        (c.fingerprint_data() for c in configs if c.project), key=lambda d: str(d["name"])
    )
    return hashlib.sha256(json.dumps(project, sort_keys=True).encode()).hexdigest()


def load_mcp_config(
    workspace: str | Path,
    *,
    user_config: Path | None = None,
    trust_store: Path | None = None,
    trust: bool = False,
) -> MCPConfig:
    """Read the user's and the project's MCP servers (see the module's docstring).

    ``trust=True`` trusts the project's set now (``--trust-mcp``) and remembers it.
    """
    workspace = Path(workspace).resolve()
    config = MCPConfig(workspace, trust_store=trust_store)
    found: dict[str, MCPServerConfig] = {}
    sources: list[tuple[Path, bool]] = [
        (user_config or config_dir() / "config.toml", False),
        (workspace / ".mcp.json", True),
        (workspace / ".gemma-agent" / "config.toml", True),
    ]
    for path, project in sources:
        for entry in _read_servers(path, project, config.problems):
            found[entry.name] = entry
    servers = list(found.values())
    if not any(c.project for c in servers):
        config.servers = servers
        return config
    known = _read_json(trust_store or trust_store_path()).get(str(workspace), {})
    trusted = known.get("mcp") == project_fingerprint(servers)
    config.servers = [c for c in servers if trusted or not c.project]
    config.untrusted = [c for c in servers if c.project and not trusted]
    if trust and config.untrusted:
        config.trust()
    return config


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_servers(path: Path, project: bool, problems: list[str]) -> list[MCPServerConfig]:
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            table = json.loads(text).get("mcpServers", {})
        else:
            table = tomllib.loads(text).get("mcp_servers", {})
    except (OSError, ValueError, AttributeError) as e:
        problems.append(f"{path}: cannot read the MCP servers ({e}); fix or delete the file")
        return []
    if not isinstance(table, dict):
        problems.append(f"{path}: the MCP servers must be a table of NAME = {{...}}")
        return []
    out = []
    for name, raw in table.items():
        try:
            out.append(_entry(str(name), raw, path, project))
        except ValueError as e:
            problems.append(f"{path}: MCP server {name!r}: {e}; it is skipped")
    return out


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: str) -> str:
    return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)


def _strings(raw: Any, what: str) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ValueError(f"`{what}` must be a table of strings")
    return {str(k): _expand(v) for k, v in raw.items()}


def _entry(name: str, raw: Any, path: Path, project: bool) -> MCPServerConfig:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,40}", name):
        raise ValueError("the name may hold letters, digits, '_', '-' and '.' (at most 40)")
    if not isinstance(raw, dict):
        raise ValueError("expected a table with `command` or `url`")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} (known: {', '.join(sorted(_KEYS))})")
    kind = str(raw.get("type", raw.get("transport", "")) or "")
    command, url = raw.get("command", ""), raw.get("url")
    if kind in ("sse",):
        raise ValueError("the SSE transport is not supported; use streamable HTTP (`url`)")
    if bool(command) == bool(url):
        raise ValueError("give either `command` (a local server) or `url` (a remote one)")
    if command and not isinstance(command, str):
        raise ValueError("`command` must be a string")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise ValueError("`url` must be an http(s) URL")
    args = raw.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError("`args` must be a list of strings")
    numbers: dict[str, float | None] = {}
    for key in ("startup_timeout", "timeout"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"`{key}` must be a number of seconds")
        if value is not None and value <= 0:
            raise ValueError(f"`{key}` must be > 0")
        numbers[key] = value
    for key in ("enabled", "read_only"):
        if key in raw and not isinstance(raw[key], bool):
            raise ValueError(f"`{key}` must be true or false")
    prefix = raw.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise ValueError("`prefix` must be a string")
    cwd = raw.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ValueError("`cwd` must be a string")
    return MCPServerConfig(
        name=name,
        command=_expand(command) if command else "",
        args=tuple(_expand(a) for a in args),
        env=_strings(raw["env"], "env") if "env" in raw else None,
        cwd=_expand(cwd) if cwd else None,
        url=_expand(url) if url else None,
        headers=_strings(raw["headers"], "headers") if "headers" in raw else {},
        prefix=prefix,
        startup_timeout=numbers["startup_timeout"] or 30.0,
        timeout=numbers["timeout"],
        read_only=raw.get("read_only"),
        enabled=raw.get("enabled", True),
        source=str(path),
        project=project,
    )


__all__ = ["MCPConfig", "MCPServerConfig", "load_mcp_config", "start_mcp_servers"]
