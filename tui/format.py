"""Pure text helpers for the TUI: folding, previews, diffs, numbers, errors. No textual import
here."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AgentError

FOLD_CHARS = 240
FOLD_LINES = 8


def fmt_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s"


def fmt_tokens(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 100_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1000:.0f}k"


def fold_text(text: str, *, max_chars: int = FOLD_CHARS, max_lines: int = FOLD_LINES) -> str:
    """Shorten long text for display, saying how much was left out."""
    lines = text.splitlines()
    note = []
    if len(lines) > max_lines:
        note.append(f"+{len(lines) - max_lines} lines")
        text = "\n".join(lines[:max_lines])
    if len(text) > max_chars:
        note.append(f"+{len(text) - max_chars} chars")
        text = text[:max_chars]
    return f"{text}… ({', '.join(note)})" if note else text


def value_text(value: Any) -> str:
    """A JSON value as people read it: strings bare, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, indent=None, default=str)
    except (TypeError, ValueError):
        return repr(value)


def format_arguments(arguments: dict[str, Any], *, folded: bool = True) -> str:
    """``key: value`` lines, long strings folded."""
    out = []
    for key, value in arguments.items():
        text = value_text(value)
        if folded:
            text = fold_text(text, max_lines=4 if "\n" in text else FOLD_LINES)
        if "\n" in text:
            indented = "\n".join("  " + line for line in text.splitlines())
            out.append(f"{key}:\n{indented}")
        else:
            out.append(f"{key}: {text}")
    return "\n".join(out)


def one_line_arguments(arguments: dict[str, Any], width: int = 60) -> str:
    """The most telling argument on one line, for card headers."""
    for key in ("command", "path", "pattern", "query", "url"):
        if isinstance(arguments.get(key), str):
            text = arguments[key].replace("\n", " ⏎ ")
            break
    else:
        text = ", ".join(f"{k}={value_text(v)}" for k, v in arguments.items()).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def result_text(content: Any) -> str:
    """A tool result as text; dicts with one obvious text field show that field."""
    if isinstance(content, dict):
        for key in ("output", "stdout", "text", "content", "error", "value"):
            if isinstance(content.get(key), str) and len(content) <= 3:
                rest = {k: v for k, v in content.items() if k != key}
                head = "  ".join(f"{k}: {value_text(v)}" for k, v in rest.items())
                return (head + "\n" if head else "") + content[key]
        try:
            return json.dumps(content, ensure_ascii=False, indent=2, default=str)
        except (TypeError, ValueError):
            return repr(content)
    return value_text(content)


def result_preview(content: Any, *, max_lines: int = 6) -> tuple[str, bool]:
    """First lines of a result, and whether there is more to show."""
    text = result_text(content)
    lines = text.splitlines() or [""]
    folded = fold_text(text, max_chars=max_lines * 120, max_lines=max_lines)
    return folded, folded != text or len(lines) > max_lines


_OLD_KEYS = ("old_string", "old_text", "old", "search", "find")
_NEW_KEYS = ("new_string", "new_text", "new", "replace", "replacement")
_CONTENT_KEYS = ("content", "text", "data")
MAX_DIFF_FILE = 1_000_000


def _first(arguments: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if isinstance(arguments.get(key), str):
            return arguments[key]
    return None


@dataclass(frozen=True, slots=True)
class FileBefore:
    """A file's text read just before a tool call changed it (None: no such file, or not
    readable text)."""

    path: str
    text: str | None


def call_path(arguments: dict[str, Any]) -> str | None:
    path = arguments.get("path") or arguments.get("file") or arguments.get("file_path")
    return path if isinstance(path, str) else None


def read_text_file(workspace: Path | None, path: str) -> str | None:
    """A workspace file's text, or None (missing, not UTF-8, over MAX_DIFF_FILE bytes)."""
    if workspace is None:
        return None
    try:
        file = (workspace / path).resolve()
        if not file.is_file() or file.stat().st_size > MAX_DIFF_FILE:
            return None
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def tool_diff(
    name: str,
    arguments: dict[str, Any],
    workspace: Path | None = None,
    *,
    before: FileBefore | None = None,
) -> str | None:
    """The unified diff a write_file/edit_file call makes: against ``before`` (the file read
    before the call ran) when given, else against the file as it is now."""
    path = call_path(arguments)
    if path is None:
        return None

    def _read(workspace: Path | None, path: str) -> str | None:
        if before is not None and before.path == path:
            return before.text
        return read_text_file(workspace, path)

    if name == "write_file":
        new = _first(arguments, _CONTENT_KEYS)
        if new is None:
            return None
        old = _read(workspace, path) or ""
    elif name == "edit_file":
        edits = arguments.get("edits")
        if not isinstance(edits, list):
            edits = [arguments]  # a single old/new pair
        pairs = []
        for edit in edits:
            if not isinstance(edit, dict):
                return None
            old_part, new_part = _first(edit, _OLD_KEYS), _first(edit, _NEW_KEYS)
            if old_part is None or new_part is None:
                return None
            pairs.append((old_part, new_part, bool(edit.get("replace_all"))))
        if not pairs:
            return None
        current = _read(workspace, path)
        if current is not None and all(o in current for o, _, _ in pairs):
            old = new = current
            for o, n, every in pairs:
                new = new.replace(o, n) if every else new.replace(o, n, 1)
        else:  # no file to apply to: show the pieces
            old = "".join(o if o.endswith("\n") else o + "\n" for o, _, _ in pairs)
            new = "".join(n if n.endswith("\n") else n + "\n" for _, n, _ in pairs)
    else:
        return None
    diff = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=3,
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
    return text.rstrip("\n") or None


def estimate_tokens(text: str) -> int:
    """Rough token count while streaming; replaced by the engine's count once Usage arrives."""
    return max(1, round(len(text) / 4)) if text else 0


def first_line(text: str, width: int = 70) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= width else line[: width - 1] + "…"
    return ""


def error_text(error: BaseException) -> str:
    """A readable one-paragraph error: our own errors carry their fix; others get their type."""
    if isinstance(error, AgentError):
        return str(error) or type(error).__name__
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
