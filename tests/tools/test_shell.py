"""run_shell on real processes: exit codes, output caps, timeouts that leave no orphans, sandbox."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest
from gemma_agent.errors import ConfigError
from gemma_agent.tools import SpillStore, ToolContext, ToolNotice, ToolOutcome, ToolRegistry
from gemma_agent.tools.builtin import RunShell, sandbox_status
from gemma_agent.tools.builtin import shell as shell_module

BWRAP = sandbox_status()
needs_bwrap = pytest.mark.skipif(not BWRAP.available, reason=f"no usable sandbox: {BWRAP.detail}")
MODES = ["none", pytest.param("bwrap", marks=needs_bwrap)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its exit status is left


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and alive(int(entry)):
                found.append(int(entry))
    return found


def wait_gone(check, seconds: float = 3.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not check():
            return True
        time.sleep(0.05)
    return not check()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()


def make(ws: Path, sandbox: str, **options: object):  # type: ignore[no-untyped-def]
    registry = ToolRegistry([RunShell(sandbox=sandbox, **options)])  # type: ignore[arg-type]
    events: list[object] = []
    ctx = ToolContext(workspace=ws, spill=SpillStore(ws.parent / "spill"), emit=events.append)

    async def run(command: str, **arguments: object) -> ToolOutcome:
        return await registry.call("run_shell", {"command": command, **arguments}, ctx)

    return run, events


@pytest.mark.parametrize("sandbox", MODES)
async def test_output_exit_code_and_cwd(ws: Path, sandbox: str) -> None:
    run, _ = make(ws, sandbox)
    out = await run("echo out; echo err >&2; pwd; echo made > made.txt; exit 3")
    assert not out.is_error
    assert out.content == {"exit_code": 3, "output": f"out\nerr\n{ws}\n"}
    assert (ws / "made.txt").read_text() == "made\n"
    quiet = await run("cat")  # stdin is closed: no hang
    assert quiet.content == {"exit_code": 0, "output": "(no output)"}
    bad = await run("")
    assert bad.is_error and "command" in bad.content


@pytest.mark.parametrize("sandbox", MODES)
async def test_timeout_kills_background_children(ws: Path, sandbox: str) -> None:
    run, _ = make(ws, sandbox)
    marker = f"{3000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    script = f"sleep {marker} & echo $! > bg.pid; setsid sleep {marker} & sleep {marker}"
    start = time.monotonic()
    out = await run(script, timeout=1)
    assert time.monotonic() - start < 10
    assert out.content["timed_out"] is True
    assert out.content["exit_code"] == -9
    assert "[killed: the command ran longer than its 1 s timeout]" in out.content["output"]
    # Nothing the command started is still running.
    assert wait_gone(lambda: processes_with(f"sleep {marker}")), processes_with(marker)
    if sandbox == "none":
        pid = int((ws / "bg.pid").read_text())
        assert not alive(pid)


@pytest.mark.parametrize("sandbox", MODES)
async def test_background_jobs_do_not_outlive_the_command(ws: Path, sandbox: str) -> None:
    run, _ = make(ws, sandbox)
    marker = f"{4000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    out = await run(f"sleep {marker} & setsid sleep {marker} & sleep 0.3; echo started")
    assert out.content == {"exit_code": 0, "output": "started\n"}
    # The setsid one left the process group; it is found because it holds the output pipe.
    assert wait_gone(lambda: processes_with(f"sleep {marker}"))


@needs_bwrap
async def test_sandbox_kills_detached_processes_too(ws: Path) -> None:
    run, _ = make(ws, "bwrap")
    marker = f"{6000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    out = await run(f"(setsid sleep {marker} > /dev/null 2>&1 &); echo detached")
    assert out.content == {"exit_code": 0, "output": "detached\n"}
    assert wait_gone(lambda: processes_with(f"sleep {marker}"))


async def test_cancelling_the_call_kills_the_process(ws: Path) -> None:
    run, _ = make(ws, "none")
    marker = f"{5000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"
    task = asyncio.create_task(run(f"echo $$ > sh.pid; sleep {marker} & sleep {marker}"))
    deadline = time.monotonic() + 10
    while not processes_with(f"sleep {marker}") and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert processes_with(f"sleep {marker}")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_gone(lambda: processes_with(f"sleep {marker}"))
    assert not alive(int((ws / "sh.pid").read_text()))


@pytest.mark.parametrize("sandbox", MODES)
async def test_fifty_megabytes_of_shell_output(ws: Path, sandbox: str) -> None:
    run, _ = make(ws, sandbox)
    size = 50 * 1024 * 1024
    gc.collect()
    tracemalloc.start()
    try:
        out = await run(
            f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size}; echo; echo END"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.content["exit_code"] == 0
    text = out.content["output"]
    assert len(text) < 17_500
    assert text.startswith("0123456789abcdefghijklmnopqrstuvwxyz\n")
    assert text.endswith("\nEND\n")
    assert f'recall_output(spill_id="{out.spill_id}")' in text
    assert peak < 8 * 1024 * 1024, peak  # streamed: never the whole output in memory
    assert out.spill_id is not None
    spill = ws.parent / "spill" / f"{out.spill_id}.txt"
    assert spill.stat().st_size == size + len("\nEND\n")


async def test_resource_limits_without_sandbox(ws: Path) -> None:
    run, _ = make(ws, "none")
    out = await run("ulimit -c; ulimit -t", timeout=20)
    assert out.content["output"] == "0\n50\n"


async def test_fallback_notice_once(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemma_agent.tools.builtin import sandbox as sandbox_module

    monkeypatch.setattr(
        sandbox_module, "_probe_result", shell_module.SandboxStatus(False, "probe says no")
    )
    run, events = make(ws, "auto")
    assert (await run("echo 1")).content["output"] == "1\n"
    assert (await run("echo 2")).content["output"] == "2\n"
    notices = [e for e in events if isinstance(e, ToolNotice)]
    assert len(notices) == 1
    assert "not sandboxed: probe says no" in notices[0].message
    with pytest.raises(ConfigError, match="sandbox='bwrap' but probe says no"):
        RunShell(sandbox="bwrap")


@needs_bwrap
async def test_sandbox_no_network_readonly_system_writable_workspace(
    ws: Path, tmp_path: Path
) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = f"(echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo NET || echo NONET"
    try:
        plain, _ = make(ws, "none")
        boxed, events = make(ws, "bwrap")
        assert (await plain(probe)).content["output"] == "NET\n"
        assert (await boxed(probe)).content["output"] == "NONET\n"
    finally:
        server.close()
        await server.wait_closed()
    outside = tmp_path / "outside.txt"
    system = await boxed(
        f"touch /usr/gemma_probe 2>&1; echo x > {outside}; echo ok > inside.txt; cat inside.txt"
    )
    output = system.content["output"]
    assert "Read-only file system" in output
    assert output.endswith("ok\n")
    assert "gemma_probe" not in os.listdir("/usr")
    assert not outside.exists()  # the sandbox's /tmp is private
    assert (ws / "inside.txt").read_text() == "ok\n"
    assert not events  # no fallback notice when the sandbox works


def test_our_preloads_are_not_inherited_and_a_tmp_venv_stays_visible(monkeypatch) -> None:
    """vLLM (CPU) preloads libraries from our venv into this process; a venv under /tmp is hidden
    by the sandbox's private /tmp unless bound back."""
    import sys

    from gemma_agent.tools.builtin import shell

    ours = f"{sys.prefix}/lib/python3.11/site-packages/torch/lib/libgomp.so.1"
    env = shell._without_our_preloads({"LD_PRELOAD": f"{ours} /opt/other/libx.so", "A": "1"})
    assert env == {"LD_PRELOAD": "/opt/other/libx.so", "A": "1"}
    assert shell._without_our_preloads({"LD_PRELOAD": ours}) == {}

    import tempfile

    with tempfile.TemporaryDirectory(dir="/tmp") as venv:
        monkeypatch.setattr(sys, "prefix", venv)
        assert shell.interpreter_binds()[:3] == ["--ro-bind", venv, venv]
    monkeypatch.setattr(sys, "prefix", "/usr")
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert shell.interpreter_binds() == []
