"""run_shell: bash in the workspace, sandboxed by bubblewrap when it can run.

Sandbox (``bwrap`` on PATH and usable, probed once per process): the rules live in
``sandbox.py`` (the file system read-only but the workspace, a private /tmp, host sockets and home
secrets masked, new /dev and /proc, no network, an allow-listed environment); everything dies with
the command. Without bwrap the command runs as a plain subprocess in its own session with resource
limits (core dumps off, CPU time and file size capped), the same environment allow-list, a notice
at start, and the approval policy asks before each command (``unsandboxed_reason``).

The command's stdout and stderr are merged and read as they come: memory stays bounded however
much it prints (head and tail are kept; the whole output streams to the spill store). At the
timeout, or when the call is cancelled, the whole process group and every descendant are killed.
Background processes do not outlive the command.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ...errors import ConfigError
from ..base import Tool, ToolContext, ToolError, ToolNotice, ToolOutput
from ..spill import SpillStore, SpillWriter, join_capped
from .sandbox import (
    SandboxRules,
    SandboxStatus,
    bwrap_args,
    interpreter_binds,
    sandbox_environment,
    sandbox_status,
)

logger = logging.getLogger("gemma_agent.tools")

SandboxMode = Literal["auto", "bwrap", "none"]


# --- sandbox ------------------------------------------------------------------------------------
# The rules (what is visible, writable, hidden; the environment) live in sandbox.py.

_fallback_logged = False


def _fallback_message(status: SandboxStatus) -> str:
    return (
        f"run_shell is not sandboxed: {status.detail}. Commands run as plain subprocesses with "
        "resource limits, and each one needs approval (auto mode asks)."
    )


def _without_our_preloads(env: dict[str, str]) -> dict[str, str]:
    """vLLM's CPU build puts its own libraries (inside our venv) into LD_PRELOAD for this
    process; a shell command must not inherit them (the loader complains on every start)."""
    preload = env.get("LD_PRELOAD")
    if preload:
        prefix = str(Path(sys.prefix).resolve())
        kept = [p for p in preload.replace(":", " ").split() if not p.startswith(prefix)]
        if kept:
            env["LD_PRELOAD"] = " ".join(kept)
        else:
            del env["LD_PRELOAD"]
    return env


# --- process handling --------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # The name is in parentheses and may contain spaces: parse after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (children, grandchildren, ...), from /proc."""
    if not os.path.isdir("/proc"):
        return []
    tree = _children_map()
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out


def kill_tree(pid: int, *, leader_alive: bool = True) -> None:
    """SIGKILL the process group led by ``pid`` and every descendant (even ones that setsid).

    ``leader_alive=False`` when the leader has exited: its pid may be reaped (and reused), so
    only its process group is signalled.
    """
    found = descendants(pid) if leader_alive else []
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for target in [pid, *found] if leader_alive else []:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Collector:
    """Keeps at most ``cap`` characters of head + tail; the full text streams to the spill."""

    def __init__(self, cap: int, store: SpillStore, label: str) -> None:
        self.cap = cap
        self.store = store
        self.label = label
        self.chunks: list[str] = []
        self.size = 0
        self.newlines = 0
        self.head = ""
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.writer: SpillWriter | None = None

    def feed(self, text: str) -> None:
        if not text:
            return
        self.size += len(text)
        self.newlines += text.count("\n")
        if self.writer is None:
            self.chunks.append(text)
            if self.size > self.cap:
                whole = "".join(self.chunks)
                self.chunks = []
                self.writer = self.store.writer(label=self.label)
                self.writer.write(whole)
                self.head = whole[: self.cap // 2]
                self._add_tail(whole[len(self.head) :])
            return
        self.writer.write(text)
        self._add_tail(text)

    def _add_tail(self, text: str) -> None:
        budget = self.cap - len(self.head)
        self.tail.append(text[-budget:])
        self.tail_size += len(self.tail[-1])
        while self.tail and self.tail_size - len(self.tail[0]) >= budget:
            self.tail_size -= len(self.tail.popleft())

    def result(self) -> tuple[str, str | None]:
        if self.writer is None:
            return "".join(self.chunks), None
        self.writer.close()
        tail = "".join(self.tail)
        tail = tail[len(tail) - (self.cap - len(self.head)) :]
        text = join_capped(self.head, tail, self.size, self.newlines, self.writer.id)
        return text, self.writer.id


class ShellArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(description="The bash command or script to run.", min_length=1)
    timeout: int = Field(
        default=120,
        ge=1,
        le=600,
        description="Seconds before the command and everything it started are killed.",
    )


class BackgroundShellArgs(ShellArgs):
    background: bool = Field(
        default=False,
        description="Start a long-running command (dev server, watcher, long test run) and "
        "return its id at once; read its output with shell_output, stop it with shell_kill. "
        "The timeout does not apply.",
    )


_BACKGROUND = """

With background: true the command keeps running after the call returns (an id such as bg1):
read what it printed since the last read with shell_output, stop it with shell_kill. All
background commands stop when the session ends."""

_DESCRIPTION = """Run a bash command in the workspace folder and return its exit code and output.

stdout and stderr are merged; long output keeps its beginning and end (the middle can be read with
recall_output). The command is killed with everything it started when the timeout passes.
Background processes do not outlive the command. Commands cannot read from stdin: pass
non-interactive flags (e.g. `-y`, `--no-pager`)."""


class RunShell(Tool):
    """The ``run_shell`` tool; one instance per configuration (sandbox, network, limits)."""

    name = "run_shell"
    description = _DESCRIPTION
    Args = ShellArgs
    shell_argument = "command"
    sequential = True  # commands share the workspace (builds, git's index lock)
    timeout = 630.0  # above the largest per-command timeout: the tool stops itself first
    max_output_chars = 16_000

    def __init__(
        self,
        *,
        sandbox: SandboxMode = "auto",
        network: bool = False,
        output_chars: int = 16_000,
        cpu_seconds: int | None = None,
        max_file_bytes: int = 4 * 1024**3,
        env: dict[str, str] | None = None,
        pass_env: Sequence[str] = (),
        hide: Sequence[str] = (),
        show: Sequence[str] = (),
        rules: SandboxRules | None = None,
        background: bool = False,
        max_background: int = 4,
    ) -> None:
        """``env``: variables set for every command. ``pass_env``: names (or globs) of our
        variables passed on besides the allow-list; ``hide``/``show``: paths hidden besides the
        default secrets / default ones left visible. ``rules``: the same as one object; by default
        the user's ``~/.config/gemma-agent/sandbox.toml`` (see docs/sandbox.md). ``background``:
        commands may run in the background (``background_tools()`` reads and stops them; at
        most ``max_background`` at once; `aclose` kills them all)."""
        if sandbox not in ("auto", "bwrap", "none"):
            raise ConfigError(f"sandbox must be 'auto', 'bwrap' or 'none', not {sandbox!r}")
        if background:
            from .background import BackgroundProcesses

            super().__init__(args_model=BackgroundShellArgs, description=_DESCRIPTION + _BACKGROUND)
            self.processes: BackgroundProcesses | None = BackgroundProcesses(
                max_running=max_background, output_chars=output_chars
            )
        else:
            super().__init__()
            self.processes = None
        if sandbox == "bwrap":
            status = sandbox_status()
            if not status.available:
                raise ConfigError(
                    f"run_shell was configured with sandbox='bwrap' but {status.detail}; "
                    "install bubblewrap or use sandbox='auto'"
                )
        self.sandbox: SandboxMode = sandbox
        self.network = network
        self.output_chars = output_chars
        self.max_output_chars = output_chars + 1_000  # the registry never cuts again
        self.cpu_seconds = cpu_seconds
        self.max_file_bytes = max_file_bytes
        self.extra_env = dict(env or {})
        base = rules if rules is not None else SandboxRules.from_file()
        self.rules = base.merged(SandboxRules(tuple(hide), tuple(show), tuple(pass_env)))
        self._notified = False
        if sandbox == "auto":
            status = sandbox_status()
            if not status.available:
                global _fallback_logged
                if not _fallback_logged:  # said at start, once per process
                    _fallback_logged = True
                    logger.warning(_fallback_message(status))

    @property
    def unsandboxed_reason(self) -> str | None:
        """Why commands would run outside the sandbox although it was wanted (sandbox="auto"
        and bwrap cannot run here), else None. The approval policy then asks before each
        command instead of allowing it in auto mode. ``sandbox="none"`` is the user's explicit
        choice and returns None."""
        if self.sandbox != "auto":
            return None
        status = sandbox_status()
        return None if status.available else status.detail

    async def _use_bwrap(self, ctx: ToolContext[Any]) -> bool:
        if self.sandbox == "none":
            return False
        status = await asyncio.to_thread(sandbox_status)
        if status.available:
            return True
        if self.sandbox == "bwrap":
            raise ToolError(f"the sandbox stopped working: {status.detail}")
        if not self._notified:
            self._notified = True
            ctx.emit(ToolNotice(_fallback_message(status), "warning"))
        return False

    def _environment(self, workspace: Path) -> dict[str, str]:
        env = sandbox_environment(
            workspace, network=self.network, rules=self.rules, extra=self.extra_env
        )
        return _without_our_preloads(env)

    def background_tools(self) -> list[Tool]:
        """``shell_output`` and ``shell_kill`` for this tool's background commands."""
        if self.processes is None:
            raise ConfigError("background_tools() needs RunShell(background=True)")
        from .background import ShellKill, ShellOutput

        return [ShellOutput(self.processes), ShellKill(self.processes)]

    async def aclose(self) -> None:
        """Kill the background commands (with their process groups)."""
        if self.processes is not None:
            await self.processes.aclose()

    def _limited(self, command: str, timeout: int | None) -> list[str]:
        # Resource limits are set by the shell (setrlimit through `ulimit`) before it execs the
        # command: safe in a threaded process, unlike preexec_fn.
        cpu = self.cpu_seconds or (timeout + 30 if timeout is not None else None)
        blocks = max(1, self.max_file_bytes // 1024)
        cpu_limit = f"ulimit -S -t {cpu} 2>/dev/null; " if cpu else ""
        prelude = (
            f"ulimit -S -c 0 2>/dev/null; {cpu_limit}"
            f'ulimit -S -f {blocks} 2>/dev/null; exec /bin/bash -c "$1"'
        )
        return ["/bin/bash", "-c", prelude, "run_shell", command]

    async def command_line(
        self, command: str, seconds: int | None, ctx: ToolContext[Any]
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and the exact environment `execute` runs ``command`` with (the sandbox
        where it runs, the limits, the allow-listed variables; cwd: the workspace), for a face
        that has the process started elsewhere (an editor's terminal). ``seconds``: the
        command's timeout (its CPU-time limit follows it)."""
        workspace = ctx.files.root
        limited = self._limited(command, seconds)
        if await self._use_bwrap(ctx):
            argv = [*bwrap_args(workspace, network=self.network, rules=self.rules), "--", *limited]
        else:
            argv = limited
        return argv, self._environment(workspace)

    async def execute(self, args: ShellArgs, ctx: ToolContext[Any]) -> ToolOutput:
        workspace = ctx.files.root
        sandboxed = await self._use_bwrap(ctx)
        background = bool(getattr(args, "background", False)) and self.processes is not None
        limited = self._limited(args.command, None if background else args.timeout)
        if sandboxed:
            argv = [*bwrap_args(workspace, network=self.network, rules=self.rules), "--", *limited]
        else:
            argv = limited
        if background and self.processes is not None:
            return await self.processes.start(
                argv,
                cwd=workspace,
                env=self._environment(workspace),
                command=args.command,
                spill=ctx.spill,
            )
        # Our own pipe rather than asyncio's: proc.wait() then waits for the process only, and
        # we decide when to stop reading (a background child may hold the write end).
        read_fd, write_fd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=workspace,
                env=self._environment(workspace),
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            raise ToolError(f"cannot start bash: {exc}") from None
        except ValueError:  # a NUL byte, or a lone surrogate that has no bytes (UnicodeError)
            os.close(read_fd)
            raise ToolError(
                "the command contains a NUL byte or characters that are not valid unicode text "
                "(lone surrogates); a command line cannot hold them. Remove them (printf '\\0' "
                "writes a NUL byte)"
            ) from None
        finally:
            os.close(write_fd)
        collector = _Collector(self.output_chars, ctx.spill, f"run_shell: {args.command[:80]}")
        reader = asyncio.create_task(_pump(read_fd, collector))  # owns read_fd
        timed_out = False
        try:
            try:
                async with asyncio.timeout(args.timeout):
                    await proc.wait()
            except TimeoutError:
                timed_out = True
            # At the timeout everything goes; after a normal exit, background jobs still in
            # the process group go (the leader is reaped: only its group is signalled).
            kill_tree(proc.pid, leader_alive=proc.returncode is None)
            await proc.wait()
            if not await _finished(reader, 2.0):
                # Something that left the group (setsid) still holds our pipe: find it by the
                # pipe itself and stop it.
                for pid in pipe_holders(read_fd):
                    kill_tree(pid)
                await _finished(reader, 2.0)
        finally:
            if not reader.done() or proc.returncode is None:
                # Cancelled (run stopped or the registry's timeout): nothing may outlive us.
                if proc.returncode is None:
                    kill_tree(proc.pid)
                reader.cancel()
                _orphans.add(reader)
                reader.add_done_callback(_orphans.discard)
        output, spill_id = collector.result()
        if timed_out:
            output += f"\n[killed: the command ran longer than its {args.timeout} s timeout]"
        result: dict[str, Any] = {
            "exit_code": proc.returncode,
            "output": output if output.strip() else "(no output)",
        }
        if timed_out:
            result["timed_out"] = True
        return ToolOutput(result, spill_id)


async def _finished(task: asyncio.Task[None], seconds: float) -> bool:
    """Wait for a task without cancelling it when the time is up."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


def pipe_holders(fd: int) -> list[int]:
    """Processes (other than us) with the other end of the pipe ``fd`` open, from /proc."""
    target = f"pipe:[{os.fstat(fd).st_ino}]"
    me = os.getpid()
    holders = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            links = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for link in links:
            try:
                if os.readlink(f"/proc/{entry}/fd/{link}") == target:
                    holders.append(int(entry))
                    break
            except OSError:
                continue
    return holders


class _Feed(Protocol):
    def feed(self, text: str) -> None: ...


async def _pump(fd: int, collector: _Feed) -> None:
    """Read the merged output until EOF; closes ``fd`` when done or cancelled."""
    loop = asyncio.get_running_loop()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    readable = asyncio.Event()
    os.set_blocking(fd, False)
    loop.add_reader(fd, readable.set)
    try:
        while True:
            # One chunk per wake-up: the selector is level-triggered, so a busy pipe wakes us
            # again next iteration and other tasks (and the timeout) still get their turn.
            await readable.wait()
            readable.clear()
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                collector.feed(decoder.decode(b"", final=True))
                return
            collector.feed(decoder.decode(chunk))
    finally:
        loop.remove_reader(fd)
        os.close(fd)


_orphans: set[asyncio.Task[None]] = set()  # cancelled readers, kept alive until they finish


__all__ = [
    "RunShell",
    "SandboxRules",
    "SandboxStatus",
    "ShellArgs",
    "bwrap_args",
    "descendants",
    "interpreter_binds",
    "kill_tree",
    "sandbox_status",
]
