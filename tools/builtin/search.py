"""Search tools: glob (find files by name) and grep (search contents by regex).

Both walk the workspace honouring .gitignore, skip .git/node_modules/.venv and the like, never
follow links out of the workspace and cap what they return.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ..base import ToolContext, tool
from ..errors import ToolError
from ..gitignore import _translate, walk_files
from ..regex import compile_regex
from ..workspace import clip

MAX_GREP_FILE_BYTES = 20 * 1024 * 1024
MAX_MATCH_LINE = 300


def _start(ctx: ToolContext, path: str) -> Path:
    return ctx.resolve(path, must_exist=True)


@tool(read_only=True)
def glob(
    ctx: ToolContext,
    pattern: str,
    path: str = ".",
    max_results: Annotated[int, Field(ge=1, le=2000)] = 300,
) -> str:
    """Find files and folders whose path matches a glob pattern, e.g. "**/*.py" or "src/*.ts".

    "*" matches within one folder, "**" across folders. Paths are relative to `path`; files
    ignored by .gitignore are skipped.

    Args:
        pattern: Glob pattern relative to `path`.
        path: Folder to search in, relative to the workspace root.
        max_results: Maximum number of paths to return.
    """
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolError("the pattern must be relative (no leading '/' and no '..'); set `path`")
    base = _start(ctx, path)
    if base.is_file():
        raise ToolError(f"{ctx.files.display(base)} is a file; `path` must be a folder")
    regex = compile_regex(
        f"^{_translate(pattern.strip('/'))}$", re.DOTALL, what=f"glob pattern {clip(pattern)!r}"
    )
    found: list[str] = []
    total = 0
    for item, is_dir in walk_files(ctx.files.root, base, include_dirs=True):
        rel = item.relative_to(base).as_posix()
        if regex.match(rel):
            total += 1
            if len(found) < max_results:
                found.append(rel + ("/" if is_dir else ""))
    if not found:
        return f"No paths match {clip(pattern)!r} under {ctx.files.display(base)}"
    if total > len(found):
        found.append(f"[... {total - len(found):,} more; narrow the pattern]")
    return "\n".join(found)


def _include_filter(include: str | None) -> Callable[[str], bool]:
    """Whether a workspace-relative path matches ``include`` (a path glob when it has a '/',
    else a glob on the file name)."""
    if not include:
        return lambda rel: True
    if "/" in include:
        regex = compile_regex(
            f"^{_translate(include)}$", re.DOTALL, what=f"include pattern {clip(include)!r}"
        )
        return lambda rel: regex.match(rel) is not None
    return lambda rel: fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], include)


@tool(read_only=True)
def grep(
    ctx: ToolContext,
    pattern: str,
    path: str = ".",
    include: str | None = None,
    ignore_case: bool = False,
    context_lines: Annotated[int, Field(ge=0, le=10)] = 0,
    max_results: Annotated[int, Field(ge=1, le=1000)] = 100,
) -> str:
    """Search file contents with a regular expression (Python syntax); prints path:line: text.

    Files ignored by .gitignore, binary files and folders like .git are skipped.

    Args:
        pattern: Regular expression to search for, e.g. "def \\w+_handler".
        path: File or folder to search, relative to the workspace root.
        include: Only search files whose name matches this glob, e.g. "*.py".
        ignore_case: Match without regard to case.
        context_lines: Lines of context to show around each match.
        max_results: Maximum number of matching lines to show.
    """
    regex = compile_regex(
        pattern,
        re.IGNORECASE if ignore_case else 0,
        what=f"regular expression {clip(pattern)!r}",
    )
    included = _include_filter(include)
    base = _start(ctx, path)
    root = ctx.files.root
    out: list[str] = []
    shown = 0
    total = 0
    files_with_matches = 0
    skipped_large = 0
    for file, _ in walk_files(root, base):
        rel = file.relative_to(root).as_posix()
        if not included(rel):
            continue
        try:
            size = file.stat().st_size
            if size > MAX_GREP_FILE_BYTES:
                skipped_large += 1
                continue
            with file.open("rb") as f:
                if b"\x00" in f.read(8192):
                    continue
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        lines = text.splitlines()
        hits = [i for i, line in enumerate(lines) if regex.search(line)]
        if not hits:
            continue
        files_with_matches += 1
        total += len(hits)
        if shown >= max_results:
            continue
        take = hits[: max_results - shown]
        shown += len(take)
        wanted: set[int] = set()
        for i in take:
            wanted.update(range(max(0, i - context_lines), min(len(lines), i + context_lines + 1)))
        hit_set = set(take)
        previous = -2
        if context_lines and out:
            out.append("--")
        for j in sorted(wanted):
            if context_lines and previous >= 0 and j > previous + 1:
                out.append("--")
            sep = ":" if j in hit_set else "-"
            out.append(f"{rel}{sep}{j + 1}{sep} {_clip(lines[j])}")
            previous = j
    if not out:
        where = ctx.files.display(base)
        return f"No matches for {clip(pattern)!r} in {where}" + (
            f" (files: {clip(include)})" if include else ""
        )
    notes = []
    if total > shown:
        notes.append(
            f"[{shown} of {total:,} matching lines in {files_with_matches} files shown; "
            "narrow the pattern, path or include]"
        )
    if skipped_large:
        notes.append(f"[{skipped_large} files over {MAX_GREP_FILE_BYTES // 2**20} MB skipped]")
    return "\n".join(out + notes)


def _clip(line: str) -> str:
    line = line.rstrip("\r")
    return line if len(line) <= MAX_MATCH_LINE else line[:MAX_MATCH_LINE] + " [...]"


__all__ = ["glob", "grep"]
