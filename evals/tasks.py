"""The task model shared by every suite.

A task is plain data: the files the agent starts from, the hidden tests copied in only after the
agent finishes, a reference solution (for ``--oracle``), the test command and two timeouts.
Files are held as bytes so a task is self-contained once loaded (suites are small).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType

from ..errors import ConfigError

DEFAULT_TEST_COMMAND = "python -m pytest -q tests"


def _frozen(files: Mapping[str, bytes] | None) -> Mapping[str, bytes]:
    return MappingProxyType(dict(files or {}))


def check_relative(path: str, *, where: str) -> str:
    """A task file path must stay inside the workspace: relative, no `..`."""
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ConfigError(f"{where}: file path {path!r} must be relative and stay inside the task")
    return p.as_posix()


@dataclass(frozen=True)
class Task:
    id: str
    instruction: str
    category: str = "general"
    # Starting workspace: relative path -> content.
    files: Mapping[str, bytes] = field(default_factory=lambda: _frozen(None))
    # Hidden tests, written over the workspace after the agent finished.
    tests: Mapping[str, bytes] = field(default_factory=lambda: _frozen(None))
    # Reference solution: files written over the workspace, then an optional unified diff.
    solution_files: Mapping[str, bytes] = field(default_factory=lambda: _frozen(None))
    solution_patch: str | None = None
    setup: tuple[str, ...] = ()
    test_command: str = DEFAULT_TEST_COMMAND
    agent_timeout: float = 600.0
    test_timeout: float = 120.0
    memory_mb: int = 4096
    source: str = ""  # where the task was loaded from, for messages

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError(f"{self.source or 'task'}: a task needs a non-empty id")
        if not self.instruction.strip():
            raise ConfigError(f"{self.source or self.id}: the instruction is empty")
        if self.agent_timeout <= 0 or self.test_timeout <= 0:
            raise ConfigError(f"{self.source or self.id}: timeouts must be positive seconds")
        for name in ("files", "tests", "solution_files"):
            mapping = getattr(self, name)
            for path in mapping:
                check_relative(path, where=self.source or self.id)
            object.__setattr__(self, name, _frozen(mapping))
        object.__setattr__(self, "setup", tuple(self.setup))

    @property
    def has_reference(self) -> bool:
        return bool(self.solution_files) or self.solution_patch is not None


@dataclass(frozen=True)
class Suite:
    name: str  # as given on the command line, resolved (built-in name or absolute path)
    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for t in self.tasks:
            if t.id in seen:
                raise ConfigError(f"suite {self.name}: two tasks have the id {t.id!r}")
            seen.add(t.id)

    def categories(self) -> list[str]:
        return sorted({t.category for t in self.tasks})
