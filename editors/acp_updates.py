"""The agent's events as ACP ``session/update`` payloads: answer and thought chunks, tool calls
(kind, title, file locations, diffs for the file tools) and plan entries.

Pure mapping, no I/O but one: `DiffTracker` reads a file around the call that changes it (from
``on_emit``, at the moment the event is produced) so that an edit is shown as a diff.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
    update_user_message,
    update_user_message_text,
)
from acp.schema import ToolCallLocation, ToolKind

from ..agent import Message, ModelTurn, SummaryMessage, ToolCall, ToolResult, UserMessage
from ..events import PlanItem

KINDS: dict[str, ToolKind] = {
    "read_file": "read",
    "view_image": "read",
    "recall_output": "read",
    "list_dir": "search",
    "glob": "search",
    "grep": "search",
    "write_file": "edit",
    "edit_file": "edit",
    "run_shell": "execute",
    "shell_output": "execute",
    "shell_kill": "execute",
    "web_fetch": "fetch",
    "update_plan": "think",
}
FILE_WRITERS = ("write_file", "edit_file")
MAX_DIFF_BYTES = 1_000_000  # larger files are shown by the tool's own result, not as a diff
MAX_RESULT_CHARS = 8_000


def tool_kind(name: str) -> ToolKind:
    return KINDS.get(name, "other")


def tool_title(call: ToolCall) -> str:
    """One line for people: what the call does, in the editor's words."""
    a = call.arguments
    path = str(a.get("path") or ".")
    match call.name:
        case "read_file":
            lines = ""
            if a.get("start_line") or a.get("end_line"):
                lines = f" (lines {a.get('start_line') or 1}–{a.get('end_line') or 'end'})"
            return f"Read {path}{lines}"
        case "write_file":
            return f"Write {path}"
        case "edit_file":
            return f"Edit {path}"
        case "list_dir":
            return f"List {path}"
        case "glob":
            return f"Find {a.get('pattern', '')} in {path}"
        case "grep":
            return f"Search {a.get('pattern', '')!r} in {path}"
        case "run_shell":
            return f"Run `{_clip(str(a.get('command', '')), 80)}`"
        case "web_fetch":
            return f"Fetch {a.get('url', '')}"
        case "update_plan":
            return "Update the plan"
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in a.items())
    return f"{call.name}({_clip(args, 80)})"


def locations(call: ToolCall, workspace: Path) -> list[ToolCallLocation] | None:
    """The file a call touches, as an absolute path (and a line where one is known)."""
    if call.name not in ("read_file", "write_file", "edit_file", "list_dir", "view_image"):
        return None
    path = call.arguments.get("path")
    if not isinstance(path, str) or not path:
        return None
    line = call.arguments.get("start_line") if call.name == "read_file" else None
    return [
        ToolCallLocation(path=str(workspace / path), line=line if isinstance(line, int) else None)
    ]


def result_text(result: ToolResult) -> str:
    content = result.content
    text = (
        content
        if isinstance(content, str)
        else json.dumps(content, ensure_ascii=False, indent=2, default=repr)
    )
    return _clip(text, MAX_RESULT_CHARS)


def plan_entries(items: Sequence[PlanItem]) -> list[Any]:
    """ACP has pending / in_progress / completed: a cancelled step is shown completed, marked."""
    entries = []
    for item in items:
        if item.status == "cancelled":
            entries.append(plan_entry(f"{item.text} (cancelled)", status="completed"))
        else:
            status = "completed" if item.status == "done" else item.status
            entries.append(plan_entry(item.text, status=status))
    return entries


def start(call: ToolCall, workspace: Path) -> Any:
    return start_tool_call(
        call.id,
        tool_title(call),
        kind=tool_kind(call.name),
        status="pending",
        locations=locations(call, workspace),
        raw_input=call.arguments,
    )


def finish(call: ToolCall, result: ToolResult, diff: tuple[str, str | None, str] | None) -> Any:
    content: list[Any] = []
    if diff is not None and not result.is_error:
        path, old, new = diff
        content.append(tool_diff_content(path, new, old))
    else:
        content.append(tool_content(text_block(result_text(result))))
    return update_tool_call(
        call.id,
        status="failed" if result.is_error else "completed",
        content=content,
        raw_output=result.content if _jsonable(result.content) else repr(result.content),
    )


class DiffTracker:
    """Old and new text of the files write_file / edit_file change, read when the events are
    produced (``on_emit``): the old text when the call is announced, the new one when it has
    finished. A later call of the same step on the same file starts from the earlier's result."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._before: dict[str, tuple[Path, str | None]] = {}
        self.diffs: dict[str, tuple[str, str | None, str]] = {}

    def _path(self, call: ToolCall) -> Path | None:
        path = call.arguments.get("path")
        if call.name not in FILE_WRITERS or not isinstance(path, str) or not path:
            return None
        return (self.workspace / path).resolve()

    def started(self, call: ToolCall) -> None:
        path = self._path(call)
        if path is not None:
            self._before[call.id] = (path, _read(path))

    def finished(self, call: ToolCall, result: ToolResult) -> None:
        entry = self._before.pop(call.id, None)
        if entry is None or result.is_error:
            return
        path, old = entry
        new = _read(path)
        if new is None:
            return
        self.diffs[call.id] = (str(path), old, new)
        for other, (p, _) in list(self._before.items()):  # still to run on the same file
            if p == path:
                self._before[other] = (p, new)


def replay(history: Sequence[Message], workspace: Path) -> list[Any]:
    """A saved session as the updates that would have shown it (session/load)."""
    updates: list[Any] = []
    for message in history:
        if isinstance(message, UserMessage):
            if message.content:
                updates.append(update_user_message_text(message.content))
            for attachment in message.attachments:
                updates.append(
                    update_user_message(text_block(f"[{attachment.kind}: {attachment.name}]"))
                )
        elif isinstance(message, SummaryMessage):
            updates.append(
                update_agent_thought_text(f"(summary of earlier work)\n{message.content}")
            )
        elif isinstance(message, ModelTurn):
            if message.reasoning:
                updates.append(update_agent_thought_text(message.reasoning))
            if message.text:
                updates.append(update_agent_message_text(message.text))
            results = {r.call_id: r for r in message.tool_results}
            for call in message.tool_calls:
                updates.append(start(call, workspace))
                if call.name == "update_plan":
                    items = _plan_arguments(call.arguments)
                    if items:
                        updates.append(update_plan(plan_entries(items)))
                result = results.get(call.id)
                if result is not None:
                    diff = None
                    if call.name == "write_file" and isinstance(call.arguments.get("content"), str):
                        path = str(workspace / str(call.arguments.get("path", "")))
                        diff = (path, None, call.arguments["content"])
                    updates.append(finish(call, result, diff))
    return updates


def _plan_arguments(arguments: dict[str, Any]) -> list[PlanItem]:
    items = []
    for raw in arguments.get("items") or []:
        if isinstance(raw, dict) and isinstance(raw.get("text"), str):
            status = raw.get("status", "pending")
            if status not in ("pending", "in_progress", "done", "cancelled"):
                status = "pending"
            items.append(PlanItem(raw["text"], status))
    return items


def _read(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_DIFF_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
