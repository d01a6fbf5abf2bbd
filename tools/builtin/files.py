"""File tools: read_file, write_file, edit_file, list_dir. Paths are confined to the workspace."""

from __future__ import annotations

import contextlib
import difflib
import os
import stat
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..base import ToolContext, ToolError, tool
from ..gitignore import ALWAYS_SKIP, stack_for

MAX_READ_BYTES = 10 * 1024 * 1024  # whole-file reads above this are refused: ask for a range
READ_BUDGET_CHARS = 12_000  # characters of numbered lines per read_file call
MAX_LINE_CHARS = 2_000
BINARY_SNIFF = 8192


def regular_file(
    ctx: ToolContext, path: str, *, folder_hint: str = "use list_dir to see what it contains"
) -> tuple[Path, str, int]:
    """An existing regular file in the workspace: its resolved path, how to show it, its size."""
    resolved = ctx.resolve(path)
    shown = ctx.files.display(resolved)
    with ctx.files.os_errors(resolved, "open"):
        info = resolved.stat()
    if stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{shown} is a directory; {folder_hint}")
    if not stat.S_ISREG(info.st_mode):
        raise ToolError(
            f"{shown} is not a regular file (device, pipe or socket); it cannot be read"
        )
    return resolved, shown, info.st_size


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sniffed block is fine.
        return exc.start < len(head) - 4
    return False


def _read_text(ctx: ToolContext, path: Path, shown: str) -> str:
    with ctx.files.os_errors(path, "read"):
        data = path.read_bytes()
    if _looks_binary(data[:BINARY_SNIFF]):
        raise ToolError(f"{shown} is a binary file ({len(data):,} bytes); it is not shown as text")
    return data.decode("utf-8", errors="replace")


@tool(read_only=True)
def read_file(
    ctx: ToolContext,
    path: str,
    start_line: Annotated[int, Field(ge=1)] = 1,
    end_line: Annotated[int | None, Field(ge=1)] = None,
) -> str:
    """Read a text file; lines are numbered (number, tab, text).

    Long files are shown in pieces: the result says where to continue.

    Args:
        path: File path relative to the workspace root.
        start_line: First line to show (1-based).
        end_line: Last line to show (inclusive); default: as many as fit.
    """
    resolved, shown, size = regular_file(ctx, path)
    ranged = start_line > 1 or end_line is not None
    if end_line is not None and end_line < start_line:
        raise ToolError(f"end_line ({end_line}) is before start_line ({start_line})")
    if size > MAX_READ_BYTES and not ranged:
        raise ToolError(
            f"{shown} is too large to read whole ({size:,} bytes); read a range with "
            "start_line/end_line, or search it with grep"
        )
    with ctx.files.os_errors(resolved, "read"):
        return _numbered_lines(resolved, shown, size, start_line, end_line)


def _numbered_lines(
    resolved: Path, shown: str, size: int, start_line: int, end_line: int | None
) -> str:
    with resolved.open("rb") as f:
        if _looks_binary(f.read(BINARY_SNIFF)):
            raise ToolError(
                f"{shown} is a binary file ({size:,} bytes); it is not shown as text "
                "(use run_shell with `file` or `xxd | head` to inspect it)"
            )
    out: list[str] = []
    used = 0
    next_line: int | None = None
    total = 0
    with resolved.open("r", encoding="utf-8", errors="replace", newline=None) as f:
        for number, line in enumerate(f, start=1):
            total = number
            if number < start_line:
                continue
            if end_line is not None and number > end_line:
                break
            text = line.rstrip("\n")
            if len(text) > MAX_LINE_CHARS:
                text = (
                    text[:MAX_LINE_CHARS]
                    + f" [... line cut, {len(text) - MAX_LINE_CHARS:,} more characters]"
                )
            if used + len(text) > READ_BUDGET_CHARS and out:
                next_line = number
                break
            out.append(f"{number:>6}\t{text}")
            used += len(text) + 8
    if not out:
        if total == 0:
            return f"({shown} is empty)"
        raise ToolError(f"{shown} has {total:,} lines; start_line {start_line} is past the end")
    if next_line is not None:
        out.append(
            f"[... more lines follow; continue with read_file(path={shown!r}, "
            f"start_line={next_line})]"
        )
    return "\n".join(out)


# Writers are sequential: two edits of one file in the same turn must not interleave.
@tool(sequential=True)
def write_file(ctx: ToolContext, path: str, content: str) -> str:
    """Create or overwrite a text file with the given content (parent folders are created).

    Prefer edit_file to change part of an existing file.

    Args:
        path: File path relative to the workspace root.
        content: The complete new content of the file.
    """
    resolved = ctx.resolve(path)
    shown = ctx.files.display(resolved)
    data = _utf8(content, "content")
    with ctx.files.os_errors(resolved, "write"):
        if resolved.is_dir():
            raise ToolError(
                f"{shown} is a directory; give the path of a file (e.g. {shown}/name.txt)"
            )
        existed = resolved.exists()
        if existed and not resolved.is_file():
            raise ToolError(f"{shown} is not a regular file (device, pipe or socket)")
        resolved.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(resolved, data)
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    verb = "Overwrote" if existed else "Created"
    return f"{verb} {shown} ({lines:,} lines, {len(data):,} bytes)"


def _utf8(text: str, argument: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ToolError(
            f"{argument} contains {text[exc.start : exc.end]!r} at position {exc.start}, which "
            "is not valid unicode text (a lone surrogate) and cannot be written as UTF-8; "
            "remove it or write the character itself"
        ) from None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file beside ``path`` (removed again when writing fails)."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    tmp = path.with_name(f".{path.name}.gemma-agent.tmp")
    try:
        tmp.write_bytes(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


class Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_text: str = Field(
        description="Exact text to find (copy it from the file, with indentation)."
    )
    new_text: str = Field(description="Replacement text.")
    replace_all: bool = Field(
        default=False, description="Replace every occurrence instead of requiring exactly one."
    )


def _near_matches(content: str, old: str, limit: int = 3) -> list[tuple[int, str, float]]:
    """Windows of the file most similar to ``old``: (first line number, text, ratio)."""
    lines = content.splitlines()
    want = old.strip("\n").splitlines() or [old]
    size = len(want)
    target = "\n".join(w.strip() for w in want)
    scored: list[tuple[float, int, str]] = []
    for i in range(max(1, len(lines) - size + 1)):
        window = lines[i : i + size]
        probe = "\n".join(w.strip() for w in window)
        matcher = difflib.SequenceMatcher(None, target, probe, autojunk=False)
        if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
            continue
        ratio = matcher.ratio()
        if ratio >= 0.5:
            scored.append((ratio, i + 1, "\n".join(window)))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(line, text, ratio) for ratio, line, text in scored[:limit]]


def _not_found(shown: str, index: int, content: str, old: str) -> str:
    message = f"edit {index}: old_text was not found in {shown}."
    near = _near_matches(content, old)
    if not near:
        return message + " Read the file again and copy the exact text (including indentation)."
    parts = [message, "Closest matches:"]
    for line, text, ratio in near:
        hint = ""
        if "\n".join(x.strip() for x in text.splitlines()) == "\n".join(
            x.strip() for x in old.strip("\n").splitlines()
        ):
            hint = " (same text, different indentation or whitespace)"
        snippet = "\n".join(f"{line + k:>6}\t{t}" for k, t in enumerate(text.splitlines()[:12]))
        parts.append(f"- line {line}, {ratio:.0%} similar{hint}:\n{snippet}")
    parts.append("Copy the exact text from the file into old_text and try again.")
    return "\n".join(parts)


@tool(sequential=True)
def edit_file(
    ctx: ToolContext,
    path: str,
    edits: Annotated[list[Edit], Field(min_length=1)],
) -> str:
    """Change a text file by exact search and replace; returns a unified diff of the change.

    Each old_text must appear exactly once in the file (add surrounding lines to make it unique)
    unless replace_all is set. Edits apply in order; if any edit fails, nothing is written.

    Args:
        path: File path relative to the workspace root.
        edits: One or more replacements, applied in order.
    """
    resolved, shown, _ = regular_file(ctx, path)
    original = _read_text(ctx, resolved, shown)
    crlf = "\r\n" in original
    content = original
    for index, edit in enumerate(edits, start=1):
        old, new = edit.old_text, edit.new_text
        if not old:
            raise ToolError(f"edit {index}: old_text is empty; give the exact text to replace")
        if old == new:
            raise ToolError(f"edit {index}: old_text and new_text are the same")
        count = content.count(old)
        if count == 0 and crlf and "\r\n" not in old:
            # The model writes "\n"; the file uses "\r\n".
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = content.count(old)
        if count == 0:
            raise ToolError(_not_found(shown, index, content, edit.old_text))
        if count > 1 and not edit.replace_all:
            starts: list[int] = []
            pos = content.find(old)
            while pos != -1 and len(starts) < 10:
                starts.append(content.count("\n", 0, pos) + 1)
                pos = content.find(old, pos + 1)
            raise ToolError(
                f"edit {index}: old_text appears {count} times in {shown} (at lines "
                f"{', '.join(map(str, starts))}); include more surrounding lines so it matches "
                "exactly once, or set replace_all"
            )
        content = content.replace(old, new) if edit.replace_all else content.replace(old, new, 1)
    data = _utf8(content, "new_text")
    with ctx.files.os_errors(resolved, "write"):
        _atomic_write(resolved, data)
    diff = difflib.unified_diff(
        original.splitlines(keepends=True),
        content.splitlines(keepends=True),
        fromfile=f"a/{shown}",
        tofile=f"b/{shown}",
        n=3,
    )
    text = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff
    )
    return text.replace("\r\n", "\n").rstrip("\n") or "(no change)"


@tool(read_only=True)
def list_dir(
    ctx: ToolContext,
    path: str = ".",
    depth: Annotated[int, Field(ge=1, le=5)] = 1,
    show_ignored: bool = False,
) -> str:
    """List a directory: folders end with '/', files show their size.

    Entries ignored by .gitignore (and folders such as .git or node_modules) are left out unless
    show_ignored is set.

    Args:
        path: Directory relative to the workspace root.
        depth: How many levels to descend (1 = only this directory).
        show_ignored: Also list entries that .gitignore excludes.
    """
    resolved = ctx.resolve(path)
    shown = ctx.files.display(resolved)
    with ctx.files.os_errors(resolved, "list"):
        if not resolved.exists():
            raise ctx.files.missing(resolved)
        if not resolved.is_dir():
            raise ToolError(f"{shown} is a file, not a directory; use read_file to read it")
        return _listing(ctx, resolved, shown, depth, show_ignored)


def _listing(ctx: ToolContext, resolved: Path, shown: str, depth: int, show_ignored: bool) -> str:
    root = ctx.files.root
    lines: list[str] = []
    limit = 500
    hidden = 0

    def visit(directory: Path, level: int) -> None:
        nonlocal hidden
        stack = stack_for(root, directory)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: (not _is_dir(e), e.name))
        except OSError as exc:
            lines.append(f"{'  ' * level}[cannot list: {exc.strerror}]")
            return
        for entry in entries:
            entry_path = Path(entry.path)
            is_dir = entry.is_dir(follow_symlinks=False)
            if not show_ignored and (
                (is_dir and entry.name in ALWAYS_SKIP) or stack.ignored(entry_path, is_dir)
            ):
                hidden += 1
                continue
            if len(lines) >= limit:
                return
            indent = "  " * level
            if entry.is_symlink():
                try:
                    target = os.readlink(entry.path)
                except OSError:  # removed or replaced meanwhile
                    target = "?"
                lines.append(f"{indent}{entry.name} -> {target}")
            elif is_dir:
                lines.append(f"{indent}{entry.name}/")
                if level + 1 < depth:
                    visit(entry_path, level + 1)
            else:
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except OSError:
                    size = 0
                lines.append(f"{indent}{entry.name}  ({_size(size)})")

    visit(resolved, 0)
    header = f"{shown}/" if shown != "." else "./"
    if not lines:
        lines.append("(empty)")
    if len(lines) >= limit:
        lines.append(f"[... listing stopped at {limit} entries; list a subfolder]")
    if hidden:
        lines.append(f"[{hidden} ignored entries not shown]")
    return header + "\n" + "\n".join(lines)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether an entry is a folder or a link to one (a symlink loop is neither)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


__all__ = ["Edit", "edit_file", "list_dir", "read_file", "write_file"]
