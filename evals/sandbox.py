"""Run a task's shell command (setup, tests) in a sandbox.

With bubblewrap (``bwrap``) present and working: the whole file system read-only, a private
``/tmp``, the shell tool's masks (host sockets, ``/run``, home secrets), only the given folders
writable, no network, its own PID namespace, killed with us.
Either way a small launcher sets rlimits (CPU seconds, address space, file size, processes)
before it execs the command, so a runaway test cannot take the machine down. Without bwrap the
rlimits are the whole sandbox (and the network stays reachable); `sandbox_kind()` says which.

A failure of the sandbox itself (bwrap cannot start, the launcher cannot exec) is reported as
``infra_error``: the grader turns it into an ``error`` result, kept out of pass@k.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO, Literal

from ..tools.builtin import interpreter_binds, sandbox_mounts

OUTPUT_LIMIT = 64_000  # characters of output kept (head and tail)
_INFRA_EXIT = 121  # the launcher's exit code when it cannot set limits or exec

# Runs under `python -S` (no site import: fast). argv: limits-json, then the command.
_LAUNCHER = r"""
import json, os, resource, sys
spec = json.loads(sys.argv[1])
argv = sys.argv[2:]
try:
    def cap(which, value):
        if value is None:
            return
        soft, hard = resource.getrlimit(which)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard if spec.get("keep_hard") else value))
    cap(resource.RLIMIT_CPU, spec.get("cpu"))
    cap(resource.RLIMIT_AS, spec.get("as"))
    cap(resource.RLIMIT_FSIZE, spec.get("fsize"))
    extra = spec.get("nproc")
    if extra is not None and os.getuid() != 0:
        # RLIMIT_NPROC counts every thread of this user: allow `extra` on top of today's count.
        uid, used = str(os.getuid()), 0
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/status") as f:
                        st = dict(l.split(":", 1) for l in f if ":" in l)
                    if st["Uid"].split()[0] == uid:
                        used += int(st["Threads"])
                except (OSError, KeyError, ValueError):
                    pass
        cap(resource.RLIMIT_NPROC, used + int(extra))
    os.execvp(argv[0], argv)
except Exception as e:
    sys.stderr.write(f"sandbox launcher: cannot run {argv!r}: {e}\n")
    sys.exit(121)
"""


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_seconds: int | None = None
    memory_mb: int | None = 4096
    file_size_mb: int | None = 512
    extra_processes: int | None = 512


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_code: int | None  # None when killed by the timeout or never started
    output: str  # stdout and stderr interleaved, clipped to OUTPUT_LIMIT
    seconds: float
    timed_out: bool = False
    infra_error: str | None = None  # the sandbox failed, not the command


SandboxKind = Literal["bwrap", "rlimit"]


@cache
def bwrap_works() -> bool:
    """bwrap is installed and can create its namespaces here (containers may forbid it)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False
    try:
        done = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "--", "true"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def sandbox_kind(prefer_bwrap: bool = True) -> SandboxKind:
    return "bwrap" if prefer_bwrap and bwrap_works() else "rlimit"


def base_env(home: Path) -> dict[str, str]:
    """A small, predictable environment: our interpreter's bin folder first on PATH."""
    path = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
    }


def _command_argv(
    command: str,
    *,
    cwd: Path,
    writable: Sequence[Path],
    limits: Limits,
    timeout: float,
    kind: SandboxKind,
    network: bool,
) -> list[str]:
    spec = {
        # CPU seconds: a little over the wall timeout, so a busy loop dies even if we were slow.
        "cpu": limits.cpu_seconds or int(timeout) + 5,
        "as": limits.memory_mb * 1024 * 1024 if limits.memory_mb else None,
        "fsize": limits.file_size_mb * 1024 * 1024 if limits.file_size_mb else None,
        "nproc": limits.extra_processes,
    }
    shell = shutil.which("bash") or "/bin/sh"
    argv = [sys.executable, "-S", "-c", _LAUNCHER, json.dumps(spec), shell, "-c", command]
    if kind == "rlimit":
        return argv
    bwrap = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # The shell tool's masks (host sockets, /run, home secrets): see docs/sandbox.md.
    bwrap += sandbox_mounts(cwd, network=network).args()
    bwrap += interpreter_binds()  # our venv may live under the /tmp just hidden
    for p in writable:
        bwrap += ["--bind", str(p), str(p)]
    bwrap += ["--unshare-all", "--die-with-parent", "--new-session", "--chdir", str(cwd)]
    if network:
        bwrap.append("--share-net")
    return [*bwrap, "--", *argv]


def _read_clipped(f: BinaryIO) -> str:
    """Head and tail of the output file (a file, not a pipe: background children cannot
    keep us waiting for EOF)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if size <= OUTPUT_LIMIT:
        return f.read().decode("utf-8", "replace")
    half = OUTPUT_LIMIT // 2
    head = f.read(half).decode("utf-8", "replace")
    f.seek(size - half)
    tail = f.read().decode("utf-8", "replace")
    return f"{head}\n[... {size - 2 * half} bytes cut ...]\n{tail}"


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_command(
    command: str,
    *,
    cwd: Path,
    writable: Sequence[Path],
    time_limit: float,
    env: Mapping[str, str],
    limits: Limits = Limits(),
    kind: SandboxKind | None = None,
    network: bool = False,
) -> CommandResult:
    """Run ``command`` with bash in ``cwd``, sandboxed; never raises for the command's failure."""
    kind = kind or sandbox_kind()
    argv = _command_argv(
        command,
        cwd=cwd,
        writable=writable,
        limits=limits,
        timeout=time_limit,
        kind=kind,
        network=network,
    )
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills every child
            )
        except OSError as e:
            return CommandResult(None, "", 0.0, infra_error=f"cannot start the sandbox: {e}")
        timed_out = False
        try:
            async with asyncio.timeout(time_limit):
                code: int | None = await proc.wait()
        except TimeoutError:
            timed_out, code = True, None
        finally:
            # The whole process group: background children of the command die with it.
            _kill_group(proc)
            if proc.returncode is None:
                await proc.wait()
        output = await asyncio.to_thread(_read_clipped, out)
    seconds = time.monotonic() - start
    if timed_out:
        return CommandResult(None, output, seconds, timed_out=True)
    infra = None
    if code == _INFRA_EXIT and "sandbox launcher:" in output:
        infra = output.strip().splitlines()[-1]
    elif kind == "bwrap" and code != 0 and output.startswith("bwrap:"):
        infra = output.strip().splitlines()[0]
    return CommandResult(code, output, seconds, infra_error=infra)
