""".gitignore matching and a workspace walker that honours it (for glob, grep and list_dir).

Implements the gitignore rules that matter: per-directory files where deeper files override
shallower ones and the last matching line wins, ``!`` negation, trailing ``/`` for directories,
anchoring by a leading or inner ``/``, ``*``, ``?``, ``[...]`` and ``**``. ``.git/info/exclude``
is read too. Ignored directories are pruned, so a negation cannot re-include a file inside an
ignored directory (as in git). Symlinked directories are not followed; symlinked files are
yielded only when they resolve inside the root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Never descended into unless the search starts inside them.
ALWAYS_SKIP = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", ".tox"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                before_ok = i == 0 or pattern[i - 1] == "/"
                after = pattern[i + 2 : i + 3]
                if before_ok and after == "/":
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                if before_ok and after == "":
                    out.append(".*")
                    i += 2
                    continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = end + 1
                continue
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse_gitignore(text: str) -> list[_Rule]:
    rules: list[_Rule] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        # Trailing spaces are ignored unless escaped.
        while line.endswith(" ") and not line.endswith("\\ "):
            line = line[:-1]
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate or line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = _translate(line)
        regex = body if anchored else f"(?:.*/)?{body}"
        try:
            rules.append(_Rule(re.compile(f"^{regex}$", re.DOTALL), negate, dir_only))
        except re.error:
            continue
    return rules


class IgnoreStack:
    """The rules in force at one directory: (base directory, rules) from the root down."""

    def __init__(self, layers: list[tuple[Path, list[_Rule]]] | None = None) -> None:
        self.layers = layers or []

    def push(self, directory: Path) -> IgnoreStack:
        rules: list[_Rule] = []
        for name in (".gitignore",):
            file = directory / name
            if file.is_file() and not file.is_symlink():
                try:
                    rules = parse_gitignore(file.read_text(encoding="utf-8", errors="replace"))
                except OSError:
                    rules = []
        return IgnoreStack([*self.layers, (directory, rules)]) if rules else self

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for base, rules in self.layers:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            for rule in rules:
                if rule.dir_only and not is_dir:
                    continue
                if rule.regex.match(rel):
                    verdict = not rule.negate
        return verdict


def stack_for(root: Path, directory: Path) -> IgnoreStack:
    """Rules that apply at ``directory``: .git/info/exclude plus each .gitignore from the root."""
    stack = IgnoreStack()
    exclude = root / ".git" / "info" / "exclude"
    if exclude.is_file():
        try:
            rules = parse_gitignore(exclude.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            rules = []
        if rules:
            stack = IgnoreStack([(root, rules)])
    current = root
    stack = stack.push(current)
    try:
        parts = directory.relative_to(root).parts
    except ValueError:
        return stack
    for part in parts:
        current = current / part
        stack = stack.push(current)
    return stack


def walk_files(
    root: Path, start: Path, *, respect_gitignore: bool = True, include_dirs: bool = False
) -> Iterator[tuple[Path, bool]]:
    """Yield (path, is_dir) below ``start`` (inside ``root``), sorted, skipping ignored ones."""
    if start.is_file():
        yield start, False
        return
    stack = stack_for(root, start) if respect_gitignore else IgnoreStack()
    yield from _walk(root, start, stack, respect_gitignore, include_dirs)


def _walk(
    root: Path, directory: Path, stack: IgnoreStack, respect: bool, include_dirs: bool
) -> Iterator[tuple[Path, bool]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir and entry.name in ALWAYS_SKIP:
            continue
        if respect and stack.ignored(path, is_dir):
            continue
        if is_dir:
            if include_dirs:
                yield path, True
            yield from _walk(
                root, path, stack.push(path) if respect else stack, respect, include_dirs
            )
        elif is_link:
            try:
                target = path.resolve()
            except (OSError, RuntimeError):
                continue
            if (target == root or root in target.parents) and target.is_file():
                yield path, False
        elif entry.is_file(follow_symlinks=False):
            yield path, False


__all__ = ["ALWAYS_SKIP", "IgnoreStack", "parse_gitignore", "stack_for", "walk_files"]
