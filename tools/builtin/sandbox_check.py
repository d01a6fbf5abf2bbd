"""``gemma-agent sandbox-check``: probe run_shell's sandbox on this machine, print what holds.

Every probe runs a real command through ``run_shell`` (the same tool the model uses) and looks
at the effect from outside: a unix socket server started here counts the connections it
receives, a secret file and variable are planted and looked for, and so on. Scratch files live
outside /tmp (the sandbox's /tmp is private, which would make some probes pass for the wrong
reason) and are removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base import ToolContext
from ..registry import ToolRegistry
from ..spill import SpillStore
from .shell import RunShell, sandbox_status


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    held: bool | None  # None: skipped (cannot be probed here)
    detail: str = ""


class SocketServer:
    """A unix socket server in a thread that counts the connections it accepts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hits = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        with suppress(OSError):
            self.path.unlink()


def _connect_command(path: Path) -> str:
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        "try:\n s.connect(sys.argv[1]); print('REACHED')\n"
        "except OSError as e: print('blocked:', e.strerror)"
    )
    return f"{sys.executable} -I -S -c {_quote(code)} {_quote(str(path))}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _scratch_base() -> Path:
    """A folder outside /tmp for the probes' files: the user's cache folder, else /var/tmp."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gemma-agent"
    for base in (cache, Path("/var/tmp")):
        try:
            base.mkdir(parents=True, exist_ok=True)
            if os.access(base, os.W_OK):
                return base
        except OSError:
            continue
    return Path(tempfile.gettempdir())


def _runtime_dir() -> Path | None:
    """A writable folder under the host's runtime folders (/run/user/UID, /run), if any."""
    for d in (os.environ.get("XDG_RUNTIME_DIR"), f"/run/user/{os.getuid()}", "/run"):
        if d and os.path.isdir(d) and os.access(d, os.W_OK):
            return Path(d)
    return None


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


async def run_checks(*, network_probe: bool = True) -> list[Probe]:
    """Run every probe; returns them in order (the first says whether bwrap runs at all)."""
    status = sandbox_status(refresh=True)
    probes = [Probe("bubblewrap runs here", status.available, status.detail)]
    shell = RunShell(sandbox="auto")
    registry = ToolRegistry([shell])
    scratch = Path(tempfile.mkdtemp(prefix="sandbox-check-", dir=_scratch_base()))
    workspace = Path(tempfile.mkdtemp(prefix="gemma-sandbox-check-ws-")).resolve()  # noqa: ASYNC240 (a one-shot CLI check, not a server)
    ctx: ToolContext[Any] = ToolContext(workspace=workspace, spill=SpillStore(scratch / "spill"))

    async def sh(command: str) -> tuple[int | None, str]:
        out = await registry.call("run_shell", {"command": command, "timeout": 60}, ctx)
        content = out.content if isinstance(out.content, dict) else {"output": str(out.content)}
        code = content.get("exit_code")
        return code if isinstance(code, int) else None, str(content.get("output", ""))

    try:
        probes += await _socket_probes(sh, scratch)
        probes += await _secret_probes(sh, scratch)
        probes += await _isolation_probes(sh, workspace, network_probe=network_probe)
        probes += await _toolchain_probes(sh)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(workspace, ignore_errors=True)
    return probes


async def _socket_probes(sh: Any, scratch: Path) -> list[Probe]:
    out: list[Probe] = []
    places: list[tuple[str, Path | None]] = [
        ("a host unix socket under the runtime folder (/run)", _runtime_dir()),
        ("a host unix socket in the home folder", scratch),
    ]
    for name, base in places:
        if base is None:
            out.append(Probe(name, None, "no writable runtime folder to put one in"))
            continue
        folder = Path(tempfile.mkdtemp(prefix="gemma-sock-", dir=base))
        try:
            server = SocketServer(folder / "probe.sock")
            try:
                _, text = await sh(_connect_command(server.path))
            finally:
                server.close()
            held = server.hits == 0
            out.append(Probe(name, held, f"{server.path}: {text.strip() or 'no output'}"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    for path in ("/var/run/docker.sock", "/run/docker.sock"):
        if os.path.exists(path):  # noqa: ASYNC240 (a one-shot CLI check, not a server)
            _, text = await sh(_connect_command(Path(path)))
            out.append(Probe(f"Docker's socket {path}", "REACHED" not in text, text.strip()))
            break
    return out


async def _secret_probes(sh: Any, scratch: Path) -> list[Probe]:
    out: list[Probe] = []
    marker = f"secret-{uuid.uuid4().hex}"
    home = scratch / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(marker + "\n")
    (home / ".netrc").write_text(f"machine example.com password {marker}\n")
    with _env("HOME", str(home)):
        _, text = await sh("cat ~/.ssh/id_rsa ~/.netrc 2>/dev/null; ls -A ~/.ssh 2>/dev/null")
    out.append(
        Probe(
            "secrets in a home folder (~/.ssh/id_rsa, ~/.netrc)",
            marker not in text and "id_rsa" not in text,
            "hidden" if marker not in text else "readable inside",
        )
    )
    from .sandbox import HIDDEN_HOME  # the real home: which of its secrets show inside?

    real_home = Path.home()
    present = [n for n in HIDDEN_HOME if (real_home / n).exists()]
    if present and sandbox_status().available:
        shown = []
        for name in present:
            path = real_home / name
            check = (
                f"ls -A {_quote(str(path))}" if path.is_dir() else f"head -c1 {_quote(str(path))}"
            )
            _, text = await sh(f"{check} 2>/dev/null | head -c1 | wc -c")
            if text.strip() not in ("", "0"):
                shown.append(name)
        detail = f"visible: {', '.join(shown)}" if shown else f"hidden: {', '.join(present)}"
        out.append(Probe("your own home folder's secrets", not shown, detail))
    token = f"token-{uuid.uuid4().hex}"
    with _env("MY_SECRET_TOKEN", token):
        _, text = await sh("env")
    out.append(
        Probe(
            "a secret environment variable (MY_SECRET_TOKEN)",
            token not in text,
            "not passed" if token not in text else "visible inside",
        )
    )
    return out


async def _isolation_probes(sh: Any, workspace: Path, *, network_probe: bool) -> list[Probe]:
    out: list[Probe] = []
    target = Path.home() / f".gemma-sandbox-check-{uuid.uuid4().hex[:8]}"
    _, text = await sh(f"touch {_quote(str(target))} 2>&1; touch /usr/.gemma-probe 2>&1; true")
    leaked = target.exists() or os.path.exists("/usr/.gemma-probe")  # noqa: ASYNC240 (a one-shot CLI check, not a server)
    for path in (target, Path("/usr/.gemma-probe")):
        with suppress(OSError):
            path.unlink()
    out.append(Probe("writes outside the workspace fail", not leaked, text.strip()[:200]))
    _, text = await sh("echo ok > inside.txt && cat inside.txt")
    out.append(Probe("writes inside the workspace work", text.strip() == "ok", text.strip()[:200]))
    _, text = await sh("ls /proc | grep -c '^[0-9]'")
    count = int(text.strip()) if text.strip().isdigit() else -1
    out.append(
        Probe(
            "/proc shows only the sandbox's processes",
            0 < count < 10,
            f"{count} processes visible inside (about {len(_pids())} outside)",
        )
    )
    if network_probe:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        try:
            probe = f"(echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo NET || echo NONET"
            _, text = await sh(probe)
        finally:
            server.close()
        out.append(Probe("no network (a local TCP port)", text.strip() == "NONET", text.strip()))
    return out


def _pids() -> list[str]:
    return [e for e in os.listdir("/proc") if e.isdigit()] if os.path.isdir("/proc") else []


async def _toolchain_probes(sh: Any) -> list[Probe]:
    out: list[Probe] = []
    commands = {
        "python runs": "python3 -c 'print(6 * 7)'",
        "git init and commit work": (
            "git init -q repo && cd repo && echo x > f && git add f && "
            "git -c user.name=check -c user.email=check@example.com commit -qm x && "
            "git log --oneline | wc -l"
        ),
        "a workspace venv with pip works": (
            "python3 -m venv .venv && .venv/bin/pip --version >/dev/null && echo pip-ok"
        ),
    }
    expected = {
        "python runs": "42",
        "git init and commit work": "1",
        "a workspace venv with pip works": "pip-ok",
    }
    for name, command in commands.items():
        first = command.split()[0]
        if shutil.which(first) is None:
            out.append(Probe(name, None, f"{first} is not installed"))
            continue
        code, text = await sh(command)
        ok = code == 0 and text.strip().endswith(expected[name])
        out.append(Probe(name, ok, "" if ok else text.strip()[-300:]))
    return out


def format_report(probes: list[Probe]) -> str:
    lines = []
    for p in probes:
        mark = "skip" if p.held is None else "ok  " if p.held else "FAIL"
        detail = " / ".join(p.detail.splitlines())
        lines.append(f"  {mark}  {p.name}" + (f"  ({detail})" if detail else ""))
    failed = [p for p in probes if p.held is False]
    lines.append("")
    if failed:
        lines.append(
            f"{len(failed)} of {len(probes)} checks do not hold. See docs/sandbox.md; where "
            "bubblewrap cannot run, every shell command asks for approval."
        )
    else:
        lines.append("The sandbox holds: every check passed.")
    return "\n".join(lines)


def sandbox_check(*, network_probe: bool = True) -> int:
    """The CLI command: run the probes, print the report; 0 when every probe holds, else 1."""
    print("gemma-agent sandbox-check: probing run_shell's sandbox on this machine")
    probes = asyncio.run(run_checks(network_probe=network_probe))
    print(format_report(probes))
    return 1 if any(p.held is False for p in probes) else 0


__all__ = ["Probe", "format_report", "run_checks", "sandbox_check"]
