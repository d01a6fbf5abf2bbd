"""The MCP servers an editor passes with session/new and session/load: a real stdio server from
PyPI (mcp-server-time) and a real streamable-HTTP one (tests/tools/mcp_server_app.py) start with
the session, their tools are the agent's (approved like any tool), and they stop with it. The
servers configured for gemma-agent join them (the project's once trusted)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("acp")
pytest.importorskip("mcp")

from acp import text_block
from acp.schema import (
    AgentThoughtChunk,
    EnvVariable,
    HttpHeader,
    HttpMcpServer,
    McpServerStdio,
    SseMcpServer,
    ToolCallProgress,
)

from .test_acp import Editor, acp_agent

pytestmark = pytest.mark.timeout(120)

TIME = str(Path(sys.executable).parent / "mcp-server-time")
APP = str(Path(__file__).parents[1] / "tools" / "mcp_server_app.py")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest_asyncio.fixture
async def http_server() -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        APP,
        "--http",
        str(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        await proc.wait()


def marked(mark: str) -> list[int]:
    """The processes whose environment holds ``mark`` (the stdio server the editor passed)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if mark.encode() in Path(f"/proc/{entry}/environ").read_bytes():
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


async def test_the_editors_mcp_servers_run_with_the_session(
    workspace: Path, http_server: str
) -> None:
    mark = f"GEMMA_TEST_MCP={uuid.uuid4().hex}"
    entries = [
        McpServerStdio(
            name="time",
            command=TIME,
            args=["--local-timezone", "UTC"],
            env=[EnvVariable(name="GEMMA_TEST_MCP", value=mark.partition("=")[2])],
        ),
        HttpMcpServer(
            type="http", name="tiny", url=http_server, headers=[HttpHeader(name="X-T", value="1")]
        ),
        McpServerStdio(name="broken", command=str(workspace / "no-such-server"), args=[], env=[]),
        SseMcpServer(type="sse", name="old", url="http://127.0.0.1:9/sse", headers=[]),
    ]
    editor = Editor(answers=["allow"])  # shout may change things: asked; get_current_time not
    async with acp_agent(editor, "mcp", workspace, "--approval", "ask") as conn:
        assert marked(mark) == []
        session = await conn.new_session(cwd=str(workspace), mcp_servers=entries)
        sid = session.session_id
        assert len(marked(mark)) == 1  # started with the session
        async with asyncio.timeout(60):
            done = await conn.prompt(session_id=sid, prompt=[text_block("what time is it?")])
        assert done.stop_reason == "end_turn"
        replayed = len(editor.updates)
        # loaded again without servers: the session's servers stop with its old self
        async with asyncio.timeout(60):
            await conn.load_session(cwd=str(workspace), session_id=sid, mcp_servers=[])
        async with asyncio.timeout(10):
            while marked(mark):  # noqa: ASYNC110 (a process to end: polled)
                await asyncio.sleep(0.1)
    del editor.updates[replayed:]  # what session/load replayed
    (now,) = editor.calls("time__get_current_time")
    (shout,) = editor.calls("tiny__shout")
    results = {u.tool_call_id: u for u in editor.of(ToolCallProgress) if u.status}
    assert results[now.tool_call_id].status == "completed"
    assert results[now.tool_call_id].raw_output["timezone"] == "UTC"
    assert results[shout.tool_call_id].raw_output == {"result": "HI HI"}
    assert [call.title for call, _ in editor.asked] == [shout.title]
    warnings = editor.text(AgentThoughtChunk)
    assert "'broken'" in warnings and "did not start" in warnings
    assert "'old'" in warnings and "(sse) is not supported" in warnings


async def test_configured_servers_start_and_the_projects_wait_for_trust(workspace: Path) -> None:
    """The user's servers (config.toml) start with every session; the project's (.mcp.json) only
    with `acp --trust-mcp` (then remembered); an editor's server replaces a configured one of
    the same name."""
    configured, passed = (f"{who}-{uuid.uuid4().hex}" for who in ("configured", "editor"))
    config = workspace.parent / "config" / "gemma-agent"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[mcp_servers.time]\ncommand = "{TIME}"\nargs = ["--local-timezone", "UTC"]\n'
        f'env = {{ GEMMA_TEST_MCP = "{configured}" }}\n'
    )
    project = {"mcpServers": {"tiny": {"command": sys.executable, "args": [APP]}}}
    (workspace / ".mcp.json").write_text(json.dumps(project))

    async def session(*flags: str, entries: list[Any]) -> tuple[Editor, list[int]]:
        """A session's editor, and how many of the configured and the editor's `time` ran."""
        editor = Editor(answers=["allow"])
        async with acp_agent(editor, "mcp", workspace, "--approval", "ask", *flags) as conn:
            sid = (await conn.new_session(cwd=str(workspace), mcp_servers=entries)).session_id
            started = [len(marked(configured)), len(marked(passed))]
            async with asyncio.timeout(60):
                done = await conn.prompt(session_id=sid, prompt=[text_block("what time?")])
            assert done.stop_reason == "end_turn"
        return editor, started

    def outcome(editor: Editor, name: str) -> ToolCallProgress:
        (call,) = editor.calls(name)
        return next(
            u
            for u in editor.of(ToolCallProgress)
            if u.tool_call_id == call.tool_call_id and u.status in ("completed", "failed")
        )

    untrusted, started = await session(entries=[])
    assert started == [1, 0]
    assert outcome(untrusted, "time__get_current_time").raw_output["timezone"] == "UTC"
    assert not untrusted.calls("tiny__shout")  # no such tool: the server did not start
    assert {"result": "HI HI"} not in [u.raw_output for u in untrusted.of(ToolCallProgress)]
    warnings = untrusted.text(AgentThoughtChunk)
    assert "project's MCP servers (tiny) are not started" in warnings and "--trust-mcp" in warnings

    editors_time = McpServerStdio(
        name="time",
        command=TIME,
        args=["--local-timezone", "UTC"],
        env=[EnvVariable(name="GEMMA_TEST_MCP", value=passed)],
    )
    trusted, started = await session("--trust-mcp", entries=[editors_time])
    assert started == [0, 1]
    assert outcome(trusted, "tiny__shout").raw_output == {"result": "HI HI"}
    assert outcome(trusted, "time__get_current_time").status == "completed"
    assert "not started" not in trusted.text(AgentThoughtChunk)

    remembered, _ = await session(entries=[])  # no flag: the set was trusted and is unchanged
    assert outcome(remembered, "tiny__shout").raw_output == {"result": "HI HI"}
