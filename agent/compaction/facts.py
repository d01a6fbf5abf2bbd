"""Computed facts: what a summary states exactly, read off the tool calls without the model.

Which tool does what is told by `ToolRoles`: the defaults name the built-in tools
(`tools.builtin`); a caller with tools of its own extends them and hands the roles to the tiers
that compute facts (`SummarizeOldTurns`, `DropOldest`, `AutoCompaction`)::

    roles = DEFAULT_TOOL_ROLES.extend(reads={"fetch_doc"}, shells={"ssh_run"})
    compactor = AutoCompaction(tool_roles=roles)

Tools named in no role are still read by their names: one with ``write``, ``edit``,
``patch``, ``create``, ``delete``, ``move`` or ``rename`` in it changes files, one with ``read``
reads them, one with ``shell`` runs commands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..messages import Message, ModelTurn, SummaryMessage, ToolCall, ToolResult
from .history import PATH_KEYS, arg_summary, is_stub, one_line, result_text

_FACTS_MAX_FILES = 40
_FACTS_MAX_ERRORS = 8
_CHANGES = re.compile(r"write|edit|patch|create|delete|move|rename")
TEST_COMMAND = re.compile(
    r"\b(pytest|py\.test|unittest|nose2|tox|nox|(npm|yarn|pnpm)( run)? test|go test|cargo test|"
    r"make (test|check)|mvn test|gradle test|jest|vitest|ctest|rspec)\b"
)
_TEST_LINE = re.compile(r"\b(passed|failed|errors?|FAILED|PASSED|OK|FAIL|ok)\b")
# Paths in a patch argument: unified diff (``+++ b/path``) and ``*** Update File: path`` blocks.
_PATCH_PATH = re.compile(r"^(?:\+\+\+ b/|\*\*\* (?:Update|Add|Delete) File: )(\S+)", re.M)


@dataclass(frozen=True, slots=True)
class ToolRoles:
    """Which tools the computed facts read as file reads, file changes, shell commands and
    plan updates (by tool name). The defaults (`DEFAULT_TOOL_ROLES`) are the built-in tools."""

    reads: frozenset[str] = frozenset({"read_file", "list_dir", "glob", "grep"})
    writes: frozenset[str] = frozenset({"write_file", "edit_file"})
    shells: frozenset[str] = frozenset({"run_shell"})
    plans: frozenset[str] = frozenset({"update_plan"})

    def extend(
        self,
        *,
        reads: Iterable[str] = (),
        writes: Iterable[str] = (),
        shells: Iterable[str] = (),
        plans: Iterable[str] = (),
    ) -> ToolRoles:
        """These roles with more tool names in them."""
        return ToolRoles(
            reads=self.reads | frozenset(reads),
            writes=self.writes | frozenset(writes),
            shells=self.shells | frozenset(shells),
            plans=self.plans | frozenset(plans),
        )

    def changes_files(self, name: str) -> bool:
        return name in self.writes or (name not in self.reads and _CHANGES.search(name) is not None)

    def reads_files(self, name: str) -> bool:
        return name in self.reads or "read" in name

    def runs_commands(self, name: str) -> bool:
        return name in self.shells or "shell" in name

    def updates_plan(self, name: str) -> bool:
        return name in self.plans


DEFAULT_TOOL_ROLES = ToolRoles()


def compute_facts(
    messages: Iterable[Message],
    previous: dict[str, Any] | None = None,
    *,
    roles: ToolRoles = DEFAULT_TOOL_ROLES,
) -> dict[str, Any]:
    """Facts read off the history without the model: files read/changed, tools used (calls,
    errors), plan state, last test run, errors seen, steps. Merged onto ``previous`` (the facts
    of an earlier summary), so they survive every compaction."""
    prev = previous or {}
    read: list[str] = list(prev.get("files_read", []))
    changed: list[str] = list(prev.get("files_changed", []))
    tools: dict[str, list[int]] = {k: list(v) for k, v in prev.get("tools", {}).items()}
    plan: list[list[str]] | None = prev.get("plan")
    last_test: dict[str, Any] | None = prev.get("last_test")
    errors: list[str] = list(prev.get("errors", []))
    steps = int(prev.get("steps", 0))

    def add(lst: list[str], path: str) -> None:
        if path in lst:
            lst.remove(path)  # most recent last
        lst.append(path)

    for message in messages:
        if isinstance(message, SummaryMessage):
            continue  # its facts come in through `previous`
        if not isinstance(message, ModelTurn):
            continue
        steps += 1
        results = {r.call_id: r for r in message.tool_results}
        for call in message.tool_calls:
            result = results.get(call.id)
            failed = result is not None and result.is_error
            counts = tools.setdefault(call.name, [0, 0])
            counts[0] += 1
            counts[1] += int(failed)
            paths = _call_paths(call)
            if roles.changes_files(call.name):
                if not failed:
                    for p in paths:
                        add(changed, p)
            elif roles.reads_files(call.name):
                for p in paths:
                    add(read, p)
            if roles.updates_plan(call.name):
                plan = _plan_items(call.arguments) or plan
            command = call.arguments.get("command") or call.arguments.get("cmd")
            if (
                isinstance(command, str)
                and roles.runs_commands(call.name)
                and TEST_COMMAND.search(command)
                and result is not None
            ):
                last_test = command_outcome(command, result)
            if failed and result is not None and not is_stub(result):
                first = result_text(result.content).strip().splitlines() or [""]
                errors.append(one_line(f"{call.name}({arg_summary(call)}): {first[0]}", 160))
    return {
        "steps": steps,
        "files_read": read[-_FACTS_MAX_FILES:],
        "files_changed": changed[-_FACTS_MAX_FILES:],
        "tools": tools,
        "plan": plan,
        "last_test": last_test,
        "errors": errors[-_FACTS_MAX_ERRORS:],
    }


def _call_paths(call: ToolCall) -> list[str]:
    paths: list[str] = []
    for key in PATH_KEYS:
        value = call.arguments.get(key)
        if isinstance(value, str) and value:
            paths.append(value)
    value = call.arguments.get("paths")
    if isinstance(value, list):
        paths.extend(v for v in value if isinstance(v, str))
    for key in ("patch", "diff", "input"):
        text = call.arguments.get(key)
        if isinstance(text, str):
            paths.extend(_PATCH_PATH.findall(text))
    return [one_line(p, 200) for p in paths]


def _plan_items(arguments: dict[str, Any]) -> list[list[str]] | None:
    for key in ("items", "plan", "steps", "todos"):
        items = arguments.get(key)
        if isinstance(items, list):
            break
    else:
        return None
    out: list[list[str]] = []
    for item in items:
        if isinstance(item, str):
            out.append([one_line(item, 120), "pending"])
        elif isinstance(item, dict):
            text = next(
                (item[k] for k in ("text", "step", "content", "title", "description") if k in item),
                "",
            )
            out.append([one_line(str(text), 120), str(item.get("status", "pending"))])
        elif isinstance(item, list | tuple) and item:
            out.append([one_line(str(item[0]), 120), str(item[1]) if len(item) > 1 else "pending"])
    return out


def command_outcome(command: str, result: ToolResult) -> dict[str, Any]:
    """A command's outcome: exit code, ok, and the last line that reads like a test verdict."""
    content = result.content
    code: Any = None
    if isinstance(content, dict):
        for key in ("exit_code", "returncode", "exit_status", "status", "code"):
            if isinstance(content.get(key), int):
                code = content[key]
                break
    if isinstance(content, dict):
        text = "\n".join(v for k, v in content.items() if isinstance(v, str))
    else:
        text = result_text(content)
    if code is None:
        m = re.search(r"exit(?:ed with)?(?: code|_code| status)?[:= ]+(-?\d+)", text, re.I)
        if m:
            code = int(m.group(1))
    line = ""
    for candidate in reversed(text.splitlines()):
        if _TEST_LINE.search(candidate):
            line = one_line(candidate.strip(" =\\n"), 160)
            break
    ok = (code == 0) if code is not None else (not result.is_error)
    return {"command": one_line(command, 120), "exit_code": code, "ok": ok, "line": line}


def render_facts(facts: dict[str, Any]) -> str:
    """The facts block inserted verbatim into a summary."""

    def files(paths: list[str]) -> str:
        return ", ".join(paths) if paths else "none"

    lines = ["Computed facts (exact, from the tool calls):"]
    lines.append(f"- Steps compacted so far: {facts.get('steps', 0)}")
    lines.append(f"- Files read: {files(facts.get('files_read', []))}")
    lines.append(f"- Files changed: {files(facts.get('files_changed', []))}")
    tools = facts.get("tools") or {}
    used = ", ".join(
        f"{name} x{n}" + (f" ({e} failed)" if e else "") for name, (n, e) in sorted(tools.items())
    )
    lines.append(f"- Tools used: {used or 'none'}")
    plan = facts.get("plan")
    if plan:
        lines.append("- Plan: " + "; ".join(f"[{status}] {text}" for text, status in plan))
    test = facts.get("last_test")
    if test:
        verdict = "passed" if test.get("ok") else "FAILED"
        code = test.get("exit_code")
        detail = f" (exit {code})" if code is not None else ""
        extra = f": {test['line']}" if test.get("line") else ""
        lines.append(f"- Last test run: `{test.get('command')}` {verdict}{detail}{extra}")
    errors = facts.get("errors") or []
    if errors:
        lines.append("- Errors seen: " + " | ".join(errors))
    return "\n".join(lines)


def facts_summary(facts: dict[str, Any]) -> str:
    """The content of a summary shortened to its facts."""
    return f"[Summary of earlier work, shortened]\n{render_facts(facts)}"
