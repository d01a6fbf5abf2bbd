"""Background processes of ``run_shell`` (``background: true``): ``shell_output``, ``shell_kill``.

A background command starts like any other (same sandbox, environment and resource limits, its
own process group) and the call returns its id at once, with what it printed in its first second.
Its output is read as it comes: ``shell_output`` returns what is new since the last read (head and
tail kept within the cap, the whole text in the spill store); ``shell_kill`` stops it with its
process group and everything below it.

No process outlives the session: `BackgroundProcesses.aclose` (the agent's ``aclose``, the TUI's
exit) kills them all, and each has a watchdog, a tiny ``sh`` in a session of its own that holds
the read end of a pipe only we write to: when this process dies, even by SIGKILL, the pipe closes
and the watchdog kills the process group.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..base import Tool, ToolContext, ToolError, ToolOutput
from ..spill import SpillStore

WATCHDOG = 'read _ ; kill -9 -"$1" 2>/dev/null; exit 0'


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What `/processes` shows of one background process."""

    id: str
    command: str
    status: str  # running | exited | killed
    exit_code: int | None
    runtime: float  # seconds
    last_lines: tuple[str, ...]


class _Window:
    """The output of one process: the unread part (capped, spilled) and its last lines."""

    def __init__(self, process: BackgroundProcess) -> None:
        self.process = process

    def feed(self, text: str) -> None:
        p = self.process
        if not text:
            return
        p.unread.feed(text)
        p.partial += text
        *lines, p.partial = p.partial.split("\n")
        p.last_lines.extend(line for line in lines if line.strip())
        if len(p.partial) > 2000:
            p.partial = p.partial[-2000:]
        p.changed.set()


class BackgroundProcess:
    def __init__(
        self, pid_id: str, command: str, proc: asyncio.subprocess.Process, spill: SpillStore
    ) -> None:
        from .shell import _Collector

        self.id = pid_id
        self.command = command
        self.proc = proc
        self.spill = spill
        self.started = time.monotonic()
        self.ended: float | None = None
        self.killed = False
        self.cap = 16_000
        self.unread = _Collector(self.cap, spill, f"{pid_id}: {command[:80]}")
        self.partial = ""
        self.last_lines: deque[str] = deque(maxlen=5)
        self.changed = asyncio.Event()
        self.reader: asyncio.Task[None] | None = None
        self.waiter: asyncio.Task[None] | None = None
        self.watchdog: asyncio.subprocess.Process | None = None
        self.watchdog_fd: int | None = None

    @property
    def status(self) -> str:
        if self.proc.returncode is None:
            return "running"
        return "killed" if self.killed else "exited"

    def info(self) -> ProcessInfo:
        end = self.ended if self.ended is not None else time.monotonic()
        lines = [*self.last_lines, *([self.partial] if self.partial.strip() else [])]
        return ProcessInfo(
            self.id,
            self.command,
            self.status,
            self.proc.returncode,
            end - self.started,
            tuple(lines[-5:]),
        )

    def take_output(self) -> tuple[str, str | None]:
        from .shell import _Collector

        text, spill_id = self.unread.result()
        self.unread = _Collector(self.cap, self.spill, f"{self.id}: {self.command[:80]}")
        return text, spill_id

    def report(self, note: str = "") -> ToolOutput:
        text, spill_id = self.take_output()
        result: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "runtime_s": round(self.info().runtime, 1),
            "output": text if text else "(no new output)",
        }
        if self.proc.returncode is not None:
            result["exit_code"] = self.proc.returncode
        if note:
            result["note"] = note
        return ToolOutput(result, spill_id)


class BackgroundProcesses:
    """The background processes of one `RunShell` (one agent): at most ``max_running`` at once."""

    def __init__(self, *, max_running: int = 4, output_chars: int = 16_000) -> None:
        self.max_running = max_running
        self.output_chars = output_chars
        self.processes: dict[str, BackgroundProcess] = {}
        self._count = 0

    def running(self) -> list[BackgroundProcess]:
        return [p for p in self.processes.values() if p.proc.returncode is None]

    def list(self) -> list[ProcessInfo]:
        return [p.info() for p in self.processes.values()]

    def get(self, process_id: str) -> BackgroundProcess:
        found = self.processes.get(process_id.strip())
        if found is None:
            known = ", ".join(self.processes) or "none started"
            raise ToolError(f"no background process {process_id!r} (known: {known})")
        return found

    async def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        command: str,
        spill: SpillStore,
        first_output_wait: float = 1.0,
    ) -> ToolOutput:
        from .shell import _pump

        if len(self.running()) >= self.max_running:
            ids = ", ".join(p.id for p in self.running())
            raise ToolError(
                f"{self.max_running} background processes are running already ({ids}); stop one "
                "with shell_kill first"
            )
        read_fd, write_fd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            os.close(read_fd)
            raise ToolError(f"cannot start the background command: {exc}") from None
        finally:
            os.close(write_fd)
        self._count += 1
        process = BackgroundProcess(f"bg{self._count}", command, proc, spill)
        process.unread.cap = self.output_chars
        process.cap = self.output_chars
        self.processes[process.id] = process
        await self._guard(process)
        process.reader = asyncio.create_task(_pump(read_fd, _Window(process)))
        process.waiter = asyncio.create_task(self._reap(process))
        await asyncio.wait({process.waiter}, timeout=first_output_wait)
        note = (
            "runs in the background: read new output with shell_output, stop it with shell_kill"
            if process.proc.returncode is None
            else "ended already"
        )
        return process.report(note)

    async def _guard(self, process: BackgroundProcess) -> None:
        """The watchdog that kills the process group if we die without cleaning up."""
        read_fd, write_fd = os.pipe()
        try:
            process.watchdog = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                WATCHDOG,
                "watchdog",
                str(process.proc.pid),
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            process.watchdog_fd = write_fd
        except OSError:
            os.close(write_fd)
        finally:
            os.close(read_fd)

    async def _reap(self, process: BackgroundProcess) -> None:
        from .shell import _finished, kill_tree

        await process.proc.wait()
        process.ended = time.monotonic()
        kill_tree(process.proc.pid, leader_alive=False)  # its own background jobs go too
        if process.reader is not None and not await _finished(process.reader, 2.0):
            process.reader.cancel()
        await self._release(process)
        process.changed.set()

    async def _release(self, process: BackgroundProcess) -> None:
        fd, process.watchdog_fd = process.watchdog_fd, None
        if fd is not None:
            os.close(fd)  # the watchdog kills the (empty) group and leaves
        if process.watchdog is not None:
            await process.watchdog.wait()

    async def read(self, process_id: str, wait: float) -> ToolOutput:
        process = self.get(process_id)
        if wait > 0 and process.proc.returncode is None and process.unread.size == 0:
            process.changed.clear()
            try:
                async with asyncio.timeout(wait):
                    await process.changed.wait()
                await asyncio.sleep(0.05)  # let a burst of output arrive together
            except TimeoutError:
                pass
        if process.proc.returncode is not None and process.waiter is not None:
            await process.waiter  # the reader has drained the pipe
        return process.report()

    async def kill(self, process_id: str) -> ToolOutput:
        process = self.get(process_id)
        if process.proc.returncode is not None:
            return process.report("it had ended already")
        await self._stop(process)
        return process.report("stopped, with its process group")

    async def _stop(self, process: BackgroundProcess) -> None:
        from .shell import kill_tree

        if process.proc.returncode is None:
            process.killed = True
            kill_tree(process.proc.pid)
        if process.waiter is not None:
            await asyncio.shield(process.waiter)

    async def aclose(self) -> None:
        """Kill every background process (with its group) and wait for them."""
        await asyncio.gather(
            *(self._stop(p) for p in self.processes.values()), return_exceptions=True
        )


class ShellOutputArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The id run_shell returned for the background command, e.g. bg1.")
    wait: float = Field(
        default=0,
        ge=0,
        le=60,
        description="Seconds to wait for new output (or the end) when there is none yet.",
    )


class ShellOutput(Tool):
    """Read what a background command (run_shell with background: true) printed since the last
    read, with its status (running, exited, killed) and exit code."""

    name = "shell_output"
    Args = ShellOutputArgs
    read_only = True
    timeout = 90.0

    def __init__(self, processes: BackgroundProcesses) -> None:
        super().__init__()
        self.processes = processes

    async def execute(self, args: ShellOutputArgs, ctx: ToolContext[Any]) -> ToolOutput:
        return await self.processes.read(args.id, args.wait)


class ShellKillArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The id of the background command to stop, e.g. bg1.")


class ShellKill(Tool):
    """Stop a background command (and everything it started); returns its last output."""

    name = "shell_kill"
    Args = ShellKillArgs
    read_only = True  # it stops only what this agent started
    timeout = 30.0

    def __init__(self, processes: BackgroundProcesses) -> None:
        super().__init__()
        self.processes = processes

    async def execute(self, args: ShellKillArgs, ctx: ToolContext[Any]) -> ToolOutput:
        return await self.processes.kill(args.id)


__all__ = ["BackgroundProcesses", "ProcessInfo", "ShellKill", "ShellOutput"]
