"""Reading a history, for the tiers: sizes, one-line descriptions, what must stay."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..messages import Message, ModelTurn, SummaryMessage, ToolCall, ToolResult, UserMessage
from .contract import CompactionContext

# Arguments that name what a call was about, most telling first. Generic names, no tool's own.
PATH_KEYS = ("path", "file_path", "filepath", "file", "filename", "target", "source", "dest")
ARG_KEYS = (*PATH_KEYS, "command", "cmd", "pattern", "query", "url", "name", "id")
_STUB = re.compile(r"^\[[^\n]{0,400}, cleared(?:; recall with recall_output\([^\n]*\))?\]$")


def one_line(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def arg_summary(call: ToolCall | None) -> str:
    """The argument that says what a call was about: a path, a command, a pattern."""
    if call is None or not call.arguments:
        return ""
    args = call.arguments
    for key in ARG_KEYS:
        value = args.get(key)
        if isinstance(value, str) and value:
            return one_line(value, 60)
    for value in args.values():
        if isinstance(value, str) and value:
            return one_line(value, 60)
    return ""


def result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=1, default=str)


def size_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str))


def is_stub(result: ToolResult) -> bool:
    """Whether a result is a stub left by `ClearOldToolResults`."""
    return isinstance(result.content, str) and _STUB.match(result.content) is not None


def calls_by_id(turn: ModelTurn) -> dict[str, ToolCall]:
    return {c.id: c for c in turn.tool_calls}


def describe(message: Message) -> str:
    """One line for people: what a message was."""
    if isinstance(message, UserMessage):
        return "user: " + one_line(message.content)
    if isinstance(message, SummaryMessage):
        return f"summary of {len(message.replaces)} messages"
    calls = calls_by_id(message)
    parts = []
    for r in message.tool_results:
        arg = arg_summary(calls.get(r.call_id))
        parts.append(f"{r.name}({arg})" + (" error" if r.is_error else ""))
    if not parts and message.tool_calls:
        parts = [f"{c.name}({arg_summary(c)})" for c in message.tool_calls]
    if message.text:
        parts.append(repr(one_line(message.text, 40)))
    return one_line("model: " + (", ".join(parts) or "(empty)"), 120)


def protected_indices(history: Sequence[Message]) -> set[int]:
    """Never compacted away: the task (first user message), the latest user message, pinned
    messages and the latest message."""
    keep = {i for i, m in enumerate(history) if m.pinned}
    users = [i for i, m in enumerate(history) if isinstance(m, UserMessage)]
    if users:
        keep.add(users[0])
        keep.add(users[-1])
    if history:
        keep.add(len(history) - 1)
    return keep


def task_index(history: Sequence[Message]) -> int:
    """Index of the task (first user message); -1 when there is none."""
    for i, m in enumerate(history):
        if isinstance(m, UserMessage):
            return i
    return -1


def content_shape(content: Any) -> str:
    """How big a result was, for its stub: lines or characters."""
    text = content if isinstance(content, str) else None
    if isinstance(content, dict):
        # Tools like run_shell return {"stdout": ..., "exit_code": ...}: count the main text.
        texts = [v for v in content.values() if isinstance(v, str)]
        text = max(texts, key=len) if texts else None
    if text is not None:
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        return f"{lines} lines" if lines > 1 else f"{len(text)} chars"
    return f"{size_chars(content)} chars"


def proxy_size(message: Message) -> int:
    """Cheap size of a message in characters (only ratios matter; calibrated per call)."""
    if isinstance(message, UserMessage | SummaryMessage):
        return len(message.content) + 16
    n = len(message.text) + len(message.reasoning or "") + 16
    for c in message.tool_calls:
        n += len(c.name) + size_chars(c.arguments) + 8
    for r in message.tool_results:
        n += len(r.name) + size_chars(r.content) + 8
    return n


def estimate_sizes(history: Sequence[Message], ctx: CompactionContext, tokens: int) -> list[float]:
    """Tokens per message, estimated from character counts scaled so they sum to ``tokens``
    (one exact count per compaction instead of one per message)."""
    proxies = [proxy_size(m) for m in history]
    total = sum(proxies) or 1
    scale = tokens / total
    return [p * scale for p in proxies]
