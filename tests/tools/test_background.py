"""Background processes of run_shell: a real HTTP server started in the background (in the
sandbox when bubblewrap runs here), polled, reached by a later tool call, killed; limits; the
output window; and no orphan after the agent closes or after its process is SIGKILLed (checked
with `ps`)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.tools import ToolContext, ToolRegistry
from gemma_agent.tools.builtin import RunShell, coding_tools

pytestmark = pytest.mark.timeout(120)


def ps_lines(marker: str) -> list[str]:
    """The command lines (from `ps`) that start with ``marker``."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith(marker)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def call(registry: ToolRegistry, ctx: ToolContext[Any], name: str, **args: Any) -> Any:
    out = await registry.call(name, args, ctx)
    assert not out.is_error, out.content
    return out.content


async def test_http_server_in_background(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi\n")
    port = free_port()
    shell = RunShell(network=True, background=True)  # bwrap where it runs; host network
    registry = ToolRegistry([shell, *shell.background_tools()])
    ctx = ToolContext(workspace=tmp_path)
    marker = f"{sys.executable} -u -m http.server {port}"
    started = await call(
        registry,
        ctx,
        "run_shell",
        command=f"exec {sys.executable} -u -m http.server {port} --bind 127.0.0.1",
        background=True,
    )
    assert started["id"] == "bg1" and started["status"] == "running"
    assert ps_lines(marker)
    text = started["output"]
    deadline = time.monotonic() + 30
    while "Serving HTTP" not in text and time.monotonic() < deadline:
        polled = await call(registry, ctx, "shell_output", id="bg1", wait=2)
        assert polled["status"] == "running"
        text += polled["output"]
    assert "Serving HTTP" in text
    # A later tool call reaches it (a new command, in a sandbox of its own on the host network).
    fetched = await call(
        registry,
        ctx,
        "run_shell",
        command=f'{sys.executable} -c "import urllib.request as u; '
        f"print(u.urlopen('http://127.0.0.1:{port}/hello.txt').read().decode())\"",
    )
    assert fetched["exit_code"] == 0 and "hi" in fetched["output"]

    def get() -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as page:
            return bytes(page.read())

    assert b"hello.txt" in await asyncio.to_thread(get)
    polled = await call(registry, ctx, "shell_output", id="bg1")
    assert "GET /hello.txt" in polled["output"]  # the access log: new output since last read
    assert (await call(registry, ctx, "shell_output", id="bg1"))["output"] == "(no new output)"
    assert [p.id for p in shell.processes.list()] == ["bg1"]  # type: ignore[union-attr]
    assert shell.processes.list()[0].status == "running"  # type: ignore[union-attr]

    killed = await call(registry, ctx, "shell_kill", id="bg1")
    assert killed["status"] == "killed" and "exit_code" in killed
    assert not ps_lines(marker)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    again = await registry.call("shell_kill", {"id": "bg1"}, ctx)
    assert not again.is_error and "ended already" in again.content["note"]
    unknown = await registry.call("shell_output", {"id": "bg9"}, ctx)
    assert unknown.is_error and "no background process 'bg9'" in unknown.content


async def test_limits_exit_and_output_window(tmp_path: Path) -> None:
    shell = RunShell(sandbox="none", background=True, max_background=1, output_chars=2000)
    registry = ToolRegistry([shell, *shell.background_tools()])
    ctx = ToolContext(workspace=tmp_path)
    first = await call(registry, ctx, "run_shell", command="sleep 4240", background=True)
    refused = await registry.call("run_shell", {"command": "sleep 4241", "background": True}, ctx)
    assert refused.is_error and "1 background processes are running already (bg1)" in (
        refused.content
    )
    await call(registry, ctx, "shell_kill", id=first["id"])
    # A command that prints a lot and ends: capped, the rest in the spill store.
    done = await call(
        registry,
        ctx,
        "run_shell",
        command="seq 1 20000; echo finished; exit 3",
        background=True,
    )
    out = await call(registry, ctx, "shell_output", id=done["id"], wait=10)
    while out["status"] == "running":
        out = await call(registry, ctx, "shell_output", id=done["id"], wait=10)
    assert out["exit_code"] == 3 and out["status"] == "exited"
    whole = done["output"] + out["output"]
    assert "finished" in whole and "recall_output" in whole and len(out["output"]) < 4000
    # The foreground path is unchanged, and background is not offered without background=True.
    plain = RunShell(sandbox="none")
    assert "background" not in plain.parameters["properties"]
    assert "background" in shell.parameters["properties"]
    assert {t.name for t in coding_tools(background=True)} >= {"shell_output", "shell_kill"}
    assert "shell_output" not in {t.name for t in coding_tools()}


async def test_agent_close_kills_background_processes(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        [
            ScriptedEngine.tool_call(
                "run_shell", command="sleep 4242 & sleep 4243", background=True
            ),
            "Started.",
        ]
    )
    agent = Agent(
        engine=engine,
        tools=coding_tools(sandbox="none", background=True),
        workspace=tmp_path,
        sessions_dir=tmp_path / ".s",
        fsync=False,
    )
    result = await agent.run("start it")
    assert result.output == "Started."
    assert len(ps_lines("sleep 424")) == 2
    await agent.aclose()
    assert not ps_lines("sleep 424")


APP = """
import asyncio, sys
from pathlib import Path
from gemma_agent.tools import ToolContext, ToolRegistry
from gemma_agent.tools.builtin import RunShell

async def main():
    shell = RunShell(sandbox=sys.argv[2], background=True)
    registry = ToolRegistry([shell, *shell.background_tools()])
    out = await registry.call(
        "run_shell", {"command": "sleep 4250 & sleep 4251; wait", "background": True},
        ToolContext(workspace=Path(sys.argv[1])),
    )
    print("ready", out.content["status"], flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.parametrize("sandbox", ["auto", "none"])
async def test_no_orphan_after_the_process_is_killed(tmp_path: Path, sandbox: str) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(tmp_path), sandbox, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.decode().strip() == "ready running"
    assert len(ps_lines("sleep 425")) == 2
    proc.kill()  # SIGKILL: no cleanup code of the app runs
    await proc.wait()
    deadline = time.monotonic() + 10
    while ps_lines("sleep 425") and time.monotonic() < deadline:  # noqa: ASYNC110 - polls ps
        await asyncio.sleep(0.1)
    assert not ps_lines("sleep 425"), "an orphan survived"
    assert not ps_lines("/bin/sh -c read _"), "the watchdog left too"
