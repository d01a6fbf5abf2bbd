"""MCP servers from configuration, against real third-party servers from PyPI (mcp-server-time,
mcp-server-git) run as subprocesses, a server that crashes on start, one that hangs, one that
dies mid-session, and our test server over streamable HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from gemma_agent.tools import (
    MCPServers,
    ToolContext,
    ToolNotice,
    ToolRegistry,
    load_mcp_config,
    start_mcp_servers,
)

BIN = Path(sys.executable).parent
TIME = str(BIN / "mcp-server-time")
GIT = str(BIN / "mcp-server-git")
APP = str(Path(__file__).with_name("mcp_server_app.py"))

pytestmark = pytest.mark.timeout(120)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config folder (user config.toml and the trust store)."""
    config = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config / "gemma-agent"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "repo"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (ws / "hello.txt").write_text("hi\n")
    return ws


def _mcp_children() -> list[psutil.Process]:
    me = psutil.Process()
    out = []
    for p in me.children(recursive=True):
        try:
            if "mcp" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


async def test_servers_from_toml_and_mcp_json_with_trust_and_crash(home: Path, repo: Path) -> None:
    crash = _write(
        repo.parent / "crash.py",
        "import sys\nprint('no token set', file=sys.stderr)\nsys.exit(1)\n",
    )
    _write(
        home / "config.toml",
        f'[mcp_servers.time]\ncommand = "{TIME}"\nargs = ["--local-timezone", "UTC"]\n\n'
        f'[mcp_servers.broken]\ncommand = "{sys.executable}"\nargs = ["{crash}"]\n',
    )
    _write(
        repo / ".mcp.json",
        json.dumps({"mcpServers": {"git": {"command": GIT, "args": ["--repository", "."]}}}),
    )
    servers, notices, config = await start_mcp_servers(repo)
    try:
        # The user's servers start; the project's (from a cloned repository) wait for trust.
        assert [c.name for c in config.untrusted] == ["git"]
        assert any("not started" in n and "--trust-mcp" in n for n in notices)
        broken = [n for n in notices if "'broken'" in n]
        assert broken and "did not start" in broken[0] and "no token set" in broken[0]
        status = {s.name: s for s in servers.status()}
        assert status["time"].state == "running" and status["broken"].state == "failed"
        assert "time__get_current_time" in status["time"].tools
        names = {t.name for t in servers.tools()}
        assert "time__convert_time" in names and not any(n.startswith("git__") for n in names)

        registry = ToolRegistry(servers.tools())
        out = await registry.call(
            "time__get_current_time", {"timezone": "Europe/Paris"}, ToolContext(workspace=repo)
        )
        assert not out.is_error and "Europe/Paris" in json.dumps(out.content)
    finally:
        await servers.aclose()
    assert not _mcp_children()

    # Trusted once (as --trust-mcp does), the set starts from then on without asking.
    load_mcp_config(repo, trust=True)
    servers, notices, config = await start_mcp_servers(repo)
    try:
        assert not config.untrusted and not any("not started" in n for n in notices)
        registry = ToolRegistry(servers.tools())
        out = await registry.call("git__git_status", {"repo_path": str(repo)}, ToolContext(repo))
        assert not out.is_error and "hello.txt" in str(out.content)
    finally:
        await servers.aclose()

    # A changed project set asks again.
    _write(
        repo / ".mcp.json",
        json.dumps({"mcpServers": {"git": {"command": GIT, "args": ["-r", str(repo)]}}}),
    )
    assert [c.name for c in load_mcp_config(repo).untrusted] == ["git"]
    assert not _mcp_children()


async def test_server_dying_mid_session_is_a_clear_error_and_a_notice(
    home: Path, tmp_path: Path
) -> None:
    _write(home / "config.toml", f'[mcp_servers.time]\ncommand = "{TIME}"\n')
    servers, notices, _ = await start_mcp_servers(tmp_path)
    assert notices == []
    try:
        children = _mcp_children()
        assert children, "the server runs as a child process"
        for child in children:
            child.kill()
        psutil.wait_procs(children, timeout=10)
        seen: list[object] = []
        registry = ToolRegistry(servers.tools())
        ctx = ToolContext(workspace=tmp_path, emit=seen.append)
        out = await registry.call("time__get_current_time", {"timezone": "UTC"}, ctx)
        assert out.is_error and not out.crashed and "stopped" in out.content
        assert [type(e) for e in seen] == [ToolNotice] and "time" in seen[0].message  # type: ignore[attr-defined]
        assert servers.status()[0].state == "failed"
        again = await registry.call("time__get_current_time", {"timezone": "UTC"}, ctx)
        assert again.is_error and "not running" in again.content and len(seen) == 1
    finally:
        await servers.aclose()


async def test_hanging_server_times_out_in_parallel(home: Path, tmp_path: Path) -> None:
    hang = _write(tmp_path / "hang.py", "import time\ntime.sleep(600)\n")
    entries = "".join(
        f'[mcp_servers.hang{i}]\ncommand = "{sys.executable}"\nargs = ["{hang}"]\n'
        "startup_timeout = 1.5\n\n"
        for i in range(3)
    )
    _write(home / "config.toml", entries + f'[mcp_servers.time]\ncommand = "{TIME}"\n')
    start = time.monotonic()
    servers, notices, _ = await start_mcp_servers(tmp_path)
    elapsed = time.monotonic() - start
    try:
        assert elapsed < 8, "three hanging servers time out together, not one after another"
        assert sum("did not start" in n for n in notices) == 3
        assert [s.state for s in servers.status()] == ["failed"] * 3 + ["running"]
    finally:
        await servers.aclose()
    await asyncio.sleep(0.2)
    assert not [
        p
        for p in psutil.Process().children(recursive=True)
        if p.is_running() and "hang.py" in " ".join(p.cmdline())
    ]


async def test_bad_config_is_a_notice_not_a_crash(home: Path, tmp_path: Path) -> None:
    _write(tmp_path / ".mcp.json", "{not json")
    _write(
        home / "config.toml",
        '[mcp_servers.a]\ncommand = "x"\nurl = "http://h"\n'
        '[mcp_servers.b]\ncommand = "x"\nbogus = 1\n'
        '[mcp_servers.c]\nurl = "ftp://x"\n'
        '[mcp_servers.d]\ncommand = "/nonexistent/server-binary"\n'
        '[mcp_servers.e]\ncommand = "x"\nenabled = false\n',
    )
    servers, notices, _ = await start_mcp_servers(tmp_path)
    await servers.aclose()
    text = "\n".join(notices)
    assert ".mcp.json: cannot read" in text
    assert "'a': give either `command`" in text and "'b': unknown keys ['bogus']" in text
    assert "'c': `url` must be an http(s) URL" in text
    assert "'d'" in text and "did not start" in text
    assert [s.name for s in servers.status()] == ["d"]  # e is disabled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_remote_server_over_streamable_http(home: Path, tmp_path: Path) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, APP, "--http", str(port), stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.2)
        _write(
            tmp_path / ".gemma-agent" / "config.toml",
            f'[mcp_servers.remote]\nurl = "http://127.0.0.1:{port}/mcp"\nprefix = "r_"\n'
            'headers = { X-Test = "${GEMMA_TEST_UNSET:-fallback}" }\n',
        )
        config = load_mcp_config(tmp_path, trust=True)
        assert config.servers[0].headers == {"X-Test": "fallback"}
        async with MCPServers(config.build()) as servers:
            registry = ToolRegistry(servers.tools())
            out = await registry.call("r_add", {"a": 2, "b": 3}, ToolContext(workspace=tmp_path))
            assert out.content == {"result": 5}
    finally:
        proc.terminate()
        await proc.wait()
