"""Workspace confinement: every path a tool touches resolves inside the workspace root.

A path is joined to the root when relative, then resolved with every symlink followed (also
dangling ones, so a write cannot create a file through a link that points out). The result must
be the root or below it, compared component by component (``/ws-evil`` is not inside ``/ws``).
Refused: ``..`` that climbs out, absolute paths elsewhere, ``~`` paths, NUL bytes, symlinks
(direct, chained, relative or dangling) whose target is outside, symlink loops; also names the
file system cannot take (too long, not encodable).

Errors of the operating system on a path the model gave (permission denied, is a directory,
name too long, disk full, a file that vanished, ...) become ``ToolError`` messages that say what
went wrong with which path and what to do instead: ``Workspace.os_errors`` around the file work,
or ``Workspace.os_error`` for one caught exception. A bug in a tool is still a crash.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError
from .errors import ToolError


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
        self.name_max = _pathconf(self.root, "PC_NAME_MAX", 255)  # bytes per name
        self.path_max = _pathconf(self.root, "PC_PATH_MAX", 4096)  # bytes per path

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
        self._check_name(text)
        candidate = Path(text)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        try:
            resolved = candidate.resolve(strict=False)
        except RuntimeError:  # how Python 3.11 reports a symlink loop
            raise PathOutsideWorkspace(_loop_message(text)) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathOutsideWorkspace(_loop_message(text)) from None
            raise ToolError(f"{clip(text)!r} cannot be resolved: {_reason(exc)}") from None
        if not self.contains(resolved):
            raise PathOutsideWorkspace(self._outside_message(text, candidate))
        if must_exist:
            with self.os_errors(resolved, "open"):
                if not resolved.exists():
                    raise self.missing(resolved)
        return resolved

    def missing(self, path: Path) -> ToolError:
        """The error for a path that does not exist, with the file in the way if there is one."""
        shown = clip(self.display(path))
        blocker = self._file_in_the_way(path)
        if blocker is not None and blocker != path:
            return ToolError(
                f"{shown} does not exist: {clip(self.display(blocker))} is a file, not a folder, "
                "so nothing can be inside it"
            )
        return ToolError(
            f"{shown} does not exist (paths are relative to the workspace root). Use list_dir "
            "or glob to find the right path"
        )

    def _check_name(self, text: str) -> None:
        """Refuse what no file system call can take, with the reason (not errno 36 later)."""
        try:
            encoded = os.fsencode(text)
        except UnicodeEncodeError as exc:
            raise ToolError(
                f"the path {clip(text)!r} contains {text[exc.start : exc.end]!r} at position "
                f"{exc.start}, which cannot be part of a file name (not valid unicode text); "
                "remove it (use glob to find a file whose name you cannot type)"
            ) from None
        for part in encoded.split(b"/"):
            if len(part) > self.name_max:
                name = os.fsdecode(part)
                raise ToolError(
                    f"the name {clip(name, 60)!r} in the path is {len(part):,} bytes long; "
                    f"file and folder names can be at most {self.name_max} bytes. Use a "
                    "shorter name"
                )
        if len(encoded) >= self.path_max:
            raise ToolError(
                f"the path {clip(text)!r} is {len(encoded):,} bytes long; paths can be at "
                f"most {self.path_max - 1:,} bytes. Use a shorter path"
            )

    @contextmanager
    def os_errors(self, path: Path, action: str) -> Iterator[None]:
        """Turn an OSError raised inside into a ToolError about ``path`` (``action``: "read",
        "write", "list", ...): what went wrong and what to do instead."""
        try:
            yield
        except OSError as exc:
            raise self.os_error(exc, path, action) from exc

    def os_error(self, exc: OSError, path: Path, action: str) -> ToolError:
        """The ToolError the model reads for ``exc``, raised while it would ``action`` ``path``."""
        shown = clip(self.display(path))
        code = exc.errno
        if code == errno.ENOENT:
            return self.missing(path)  # also a file removed meanwhile
        if code in (errno.ENOTDIR, errno.EEXIST):
            blocker = self._file_in_the_way(path)
            if blocker is not None and blocker != path:
                where = clip(self.display(blocker))
                return ToolError(
                    f"cannot {action} {shown}: {where} is a file, not a folder, so nothing can "
                    f"be inside it. Use a path whose folders are folders (list_dir shows them)"
                )
            if code == errno.ENOTDIR:
                return ToolError(f"{shown} is not a folder; use read_file to read a file")
        if code == errno.EISDIR:
            return ToolError(
                f"cannot {action} {shown}: it is a directory. Use list_dir to see what it "
                "contains, and give the path of a file"
            )
        if code in (errno.EACCES, errno.EPERM):
            return ToolError(
                f"cannot {action} {shown}: permission denied. This file or folder is not "
                "accessible to the agent; use another path (run_shell with `ls -l` shows the "
                "permissions)"
            )
        if code == errno.ELOOP:
            return ToolError(_loop_message(self.display(path)))
        if code == errno.ENAMETOOLONG:
            return ToolError(
                f"cannot {action} {shown}: the name is too long for the file system. Use a "
                "shorter path"
            )
        if code in (errno.ENOSPC, errno.EDQUOT):
            return ToolError(
                f"cannot {action} {shown}: no space left on the device (or the disk quota is "
                "used up). Nothing was written; free space (e.g. remove build outputs or large "
                "temporary files) or write less"
            )
        if code == errno.EROFS:
            return ToolError(f"cannot {action} {shown}: the file system is read-only")
        if code == errno.EFBIG:
            return ToolError(f"cannot {action} {shown}: the file would be too large")
        if code in (errno.EMFILE, errno.ENFILE):
            return ToolError(f"cannot {action} {shown}: too many open files; try again later")
        if code in (errno.EBUSY, errno.ETXTBSY):
            return ToolError(f"cannot {action} {shown}: it is in use by another process")
        return ToolError(f"cannot {action} {shown}: {_reason(exc)}")

    def _file_in_the_way(self, path: Path) -> Path | None:
        """The first part of ``path`` (inside the workspace) that exists but is not a folder."""
        current = self.root
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return None
        for part in parts:
            current = current / part
            try:
                if not current.is_dir():
                    return current if current.exists() else None
            except OSError:
                return None
        return None

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


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut in the middle to about ``limit`` characters (for long paths in messages)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}[... {len(text) - 2 * half:,} characters ...]{text[-half:]}"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _loop_message(path: str) -> str:
    return (
        f"{clip(path)!r} goes through a symlink loop (a link that points, directly or through "
        "others, back to itself); use a path that does not go through that link"
    )


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(path, name)
    except (OSError, ValueError):
        return default
    return value if value > 0 else default


def _first_symlink(candidate: Path, root: Path) -> Path | None:
    current = Path(candidate.anchor)
    for part in candidate.parts[1:]:
        current = current / part
        if os.path.islink(current) and root in current.parents:
            return current
    return None


__all__ = ["PathOutsideWorkspace", "Workspace", "clip"]
