"""The agent's events as ACP ``session/update`` payloads: answer and thought chunks, tool calls
(kind, title, file locations, diffs for the file tools) and plan entries.

A sub-agent's tool calls are tool calls of their own: their id is the child's path and the
call's (``main/explore#1/call_…``), their title starts with the child's short path
(``explore#1 › Read src/x.py``).

Pure mapping, no I/O but one: `DiffTracker` reads a file around the call that changes it (from
``on_emit``, at the moment the event is produced) so that an edit is shown as a diff.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    tool_terminal_ref,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
    update_user_message,
    update_user_message_text,
)
from acp.schema import ToolCallLocation, ToolKind

from ..agent import (
    Message,
    ModelTurn,
    SummaryMessage,
    TaskTool,
    ToolCall,
    ToolResult,
    UserMessage,
)
from ..events import PlanItem, SubagentEvent, agent_label

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
    TaskTool.name: "think",  # a sub-agent at work (as Claude Code's adapter shows its Task)
}
FILE_WRITERS = ("write_file", "edit_file")
FINAL_ANSWER = "final_answer"  # the call that gives the answer (tool_choice="required")
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
        case "task":
            what = " ".join(str(a.get("description") or "").split())
            return f"Sub-agent {a.get('agent_type', '')}: {_clip(what, 80)}".rstrip(": ")
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in a.items())
    return f"{call.name}({_clip(args, 80)})"


def call_id(call: ToolCall, agent: str = "") -> str:
    """The ACP id of a call: its own id, or for a sub-agent's (``agent``: its path) the path
    and the id, unique in the session."""
    return f"{agent}/{call.id}" if agent else call.id


def task_call_id(event: SubagentEvent) -> str:
    """The ACP id of the call that runs a sub-agent: its parent's (the run's own, or for a
    grandchild its parent child's)."""
    parent = event.agent.rpartition("/")[0]
    return event.call_id if "/" not in parent else f"{parent}/{event.call_id}"


def title(call: ToolCall, agent: str = "") -> str:
    """`tool_title`, after the sub-agent's short path when a sub-agent makes the call."""
    text = tool_title(call)
    return f"{agent_label(agent)} › {text}" if agent else text


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


def answer_text(value: Any) -> str:
    """A run's output (given through ``final_answer``) as the answer's text."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, ensure_ascii=False, indent=2, default=repr)


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


def start(call: ToolCall, workspace: Path, agent: str = "") -> Any:
    return start_tool_call(
        call_id(call, agent),
        title(call, agent),
        kind=tool_kind(call.name),
        status="pending",
        locations=locations(call, workspace),
        raw_input=call.arguments,
    )


def finish(
    call: ToolCall,
    result: ToolResult,
    diff: tuple[str, str | None, str] | None,
    agent: str = "",
    *,
    terminal: str | None = None,
) -> Any:
    """A call's end: its diff, the editor's terminal it ran in (kept in view), or its text."""
    content: list[Any] = []
    if terminal is not None:
        content.append(tool_terminal_ref(terminal))
    elif diff is not None and not result.is_error:
        path, old, new = diff
        content.append(tool_diff_content(path, new, old))
    else:
        content.append(tool_content(text_block(result_text(result))))
    return update_tool_call(
        call_id(call, agent),
        status="failed" if result.is_error else "completed",
        content=content,
        raw_output=raw_output(result),
    )


def raw_output(result: ToolResult) -> dict[str, Any]:
    """A result as an object (clients such as Toad take nothing else): a mapping as it is,
    anything else under ``output`` (``error`` for a failed call)."""
    content = result.content if _jsonable(result.content) else repr(result.content)
    if isinstance(content, dict):
        return content
    return {"error" if result.is_error else "output": content}


class DiffTracker:
    """Old and new text of the files write_file / edit_file change, read when the events are
    produced (``on_emit``): the old text when the call is announced, the new one when it has
    finished. A later call of the same step on the same file starts from the earlier's result.

    A sub-agent's events reach ``on_emit`` when its parent forwards them, which may be after
    its call ran: then both texts are the new one, and no diff is made (the tool's own result
    is shown instead of a diff of nothing)."""

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
        if new != old:  # else no change to show, or read too late (the tool's text says it)
            self.diffs[call.id] = (str(path), old, new)
        for other, (p, _) in list(self._before.items()):  # still to run on the same file
            if p == path:
                self._before[other] = (p, new)


Children = Mapping[str, Sequence[tuple[str, Sequence[Message]]]]
"""The sub-agents of a session by the task call that ran them: (path, history) each."""


def replay(
    history: Sequence[Message], workspace: Path, children: Children | None = None
) -> list[Any]:
    """A saved session as the updates that would have shown it (session/load). ``children``:
    the sub-agents' transcripts, whose tool calls are shown before their task call ends."""
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
            updates += _replay_calls(message, workspace, "", children or {})
    return updates


def _replay_calls(turn: ModelTurn, workspace: Path, agent: str, children: Children) -> list[Any]:
    updates: list[Any] = []
    results = {r.call_id: r for r in turn.tool_results}
    for call in turn.tool_calls:
        if call.name == FINAL_ANSWER:  # the answer (a child's: its task call's result)
            result = results.get(call.id)
            if not agent and result is not None and not result.is_error:
                given = call.arguments
                updates.append(update_agent_message_text(answer_text(given.get("answer", given))))
            continue
        updates.append(start(call, workspace, agent))
        if call.name == "update_plan" and not agent:  # a child's plan is not the session's
            items = _plan_arguments(call.arguments)
            if items:
                updates.append(update_plan(plan_entries(items)))
        for child, history in children.get(call.id, ()):
            for message in history:
                if isinstance(message, ModelTurn):
                    updates += _replay_calls(message, workspace, child, {})
        result = results.get(call.id)
        if result is not None:
            diff = None
            if call.name == "write_file" and isinstance(call.arguments.get("content"), str):
                path = str(workspace / str(call.arguments.get("path", "")))
                diff = (path, None, call.arguments["content"])
            updates.append(finish(call, result, diff, agent))
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
