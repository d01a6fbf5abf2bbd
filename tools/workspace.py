"""Workspace confinement: every path a tool touches resolves inside the workspace root.

A path is joined to the root when relative, then resolved with every symlink followed (also
dangling ones, so a write cannot create a file through a link that points out). The result must
be the root or below it, compared component by component (``/ws-evil`` is not inside ``/ws``).
Refused: ``..`` that climbs out, absolute paths elsewhere, ``~`` paths, NUL bytes, symlinks
(direct, chained, relative or dangling) whose target is outside, symlink loops.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from .base import ToolError


class PathOutsideWorkspace(ToolError):
    """A path that leaves the workspace; the message tells the model what is allowed."""


class Workspace:
    def __init__(self, root: str | Path) -> None:
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise ConfigError(
                f"workspace {str(root)!r} is not a directory; create it or pick another"
            )
        self.root = root_path.resolve(strict=True)

    def resolve(self, path: str | Path, *, must_exist: bool = False) -> Path:
        """The absolute, symlink-free path inside the workspace, or PathOutsideWorkspace."""
        if isinstance(path, Path):
            text = str(path)
        elif isinstance(path, str):
            text = path
        else:
            raise PathOutsideWorkspace(f"a path must be a string, got {type(path).__name__}")
        if not text.strip():
            raise PathOutsideWorkspace("the path is empty; use '.' for the workspace root")
        if "\x00" in text:
            raise PathOutsideWorkspace("the path contains a NUL byte")
        if text.startswith("~"):
            raise PathOutsideWorkspace(
                f"{text!r}: '~' is not expanded and home folders are outside the workspace; "
                "use a path relative to the workspace root"
            )
        candidate = Path(text)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            resolved = candidate.resolve(strict=False)
        except (RuntimeError, OSError) as exc:  # symlink loop, name too long, ...
            raise PathOutsideWorkspace(f"{text!r} cannot be resolved: {exc}") from None
        if not self.contains(resolved):
            raise PathOutsideWorkspace(self._outside_message(text, candidate))
        if must_exist and not resolved.exists():
            raise ToolError(f"{self.display(resolved)} does not exist")
        return resolved

    def contains(self, path: Path) -> bool:
        return path == self.root or self.root in path.parents

    def display(self, path: Path) -> str:
        """How a resolved path is shown to the model: relative to the root."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return "." if str(rel) == "." else rel.as_posix()

    def _outside_message(self, text: str, candidate: Path) -> str:
        link = _first_symlink(candidate, self.root)
        if link is not None:
            return (
                f"{text!r} goes through the symlink {self.display(link)!r}, which points outside "
                f"the workspace ({self.root}); only paths inside the workspace can be used"
            )
        return (
            f"{text!r} is outside the workspace ({self.root}); use a path inside it, relative to "
            "the workspace root"
        )


def _first_symlink(candidate: Path, root: Path) -> Path | None:
    current = Path(candidate.anchor)
    for part in candidate.parts[1:]:
        current = current / part
        if os.path.islink(current) and root in current.parents:
            return current
    return None


__all__ = ["PathOutsideWorkspace", "Workspace"]
