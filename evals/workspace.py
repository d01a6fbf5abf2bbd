"""A fresh temporary workspace per task-sample.

Layout under one temporary root::

    work/   the agent's workspace: the task's starting files (and, after the agent, hidden tests)
    home/   HOME and TMPDIR of sandboxed commands, and the JUnit XML of the test run

Both are the only writable folders of a sandboxed command.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .sandbox import CommandResult, Limits, SandboxKind, base_env, run_command
from .tasks import Task, check_relative

_PREFIX = "gemma-eval-"


def sweep_stale(parent: Path | None = None) -> int:
    """Remove workspaces of eval runs that are no longer alive (killed runs); returns how many."""
    removed = 0
    for path in Path(parent or tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid_text = path.name[len(_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or not path.is_dir():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, someone else's
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


class WorkspaceError(Exception):
    """Preparing the workspace failed (setup command, reference patch): an infra error."""


@dataclass
class Workspace:
    root: Path
    work: Path
    home: Path

    @classmethod
    def create(cls, task: Task, *, parent: Path | None = None) -> Workspace:
        # The pid in the name lets a later run remove what a killed run left behind.
        root = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))
        ws = cls(root=root, work=root / "work", home=root / "home")
        ws.work.mkdir()
        ws.home.mkdir()
        ws.write_files(task.files)
        return ws

    def write_files(self, files: Mapping[str, bytes]) -> None:
        for rel, data in files.items():
            path = self.work / check_relative(rel, where="workspace")
            if path.is_symlink() or (path.exists() and not path.is_file()):
                # The agent may have left a link or a folder there: hidden files win.
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if data.startswith(b"#!"):
                path.chmod(0o755)

    async def run(
        self,
        command: str,
        *,
        time_limit: float,
        env: Mapping[str, str] | None = None,
        limits: Limits = Limits(),
        kind: SandboxKind | None = None,
    ) -> CommandResult:
        full_env = base_env(self.home)
        full_env.update(env or {})
        return await run_command(
            command,
            cwd=self.work,
            writable=[self.work, self.home],
            time_limit=time_limit,
            env=full_env,
            limits=limits,
            kind=kind,
        )

    async def setup(self, task: Task, *, kind: SandboxKind | None = None) -> None:
        for command in task.setup:
            done = await self.run(
                command,
                time_limit=task.test_timeout,
                limits=Limits(memory_mb=task.memory_mb),
                kind=kind,
            )
            if done.infra_error or done.timed_out or done.exit_code != 0:
                why = done.infra_error or (
                    "timed out" if done.timed_out else f"exit {done.exit_code}"
                )
                raise WorkspaceError(
                    f"setup command {command!r} failed ({why}): {done.output[-2000:]}"
                )

    async def apply_reference(self, task: Task) -> None:
        """The task's reference solution: overlay files, then the patch."""
        if not task.has_reference:
            raise WorkspaceError(f"task {task.id} has no reference solution (--oracle needs one)")
        await asyncio.to_thread(self.write_files, task.solution_files)
        if task.solution_patch is not None:
            await self._apply_patch(task.solution_patch)

    async def _apply_patch(self, patch: str) -> None:
        attempts = []
        if shutil.which("git"):
            attempts.append(["git", "apply", "--whitespace=nowarn", "-"])
        if shutil.which("patch"):
            attempts.append(["patch", "-p1", "--batch", "--forward", "--silent"])
        if not attempts:
            raise WorkspaceError("applying a reference patch needs git or patch on PATH")
        errors = []
        for argv in attempts:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.work,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate(patch.encode())
            if proc.returncode == 0:
                return
            errors.append(f"{argv[0]}: {out.decode(errors='replace').strip()}")
        raise WorkspaceError("the reference patch does not apply: " + "; ".join(errors))

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
