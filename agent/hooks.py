"""Hooks: commands (or Python callables) that run at points of the agent's life.

The format Claude Code made common, in ``.gemma-agent/settings.json`` (the user's
``~/.config/gemma-agent/settings.json`` and the project's ``<workspace>/.gemma-agent/settings.json``)::

    {"hooks": {"PreToolUse": [{"matcher": "run_shell",
                               "hooks": [{"type": "command", "command": "./check.sh",
                                          "timeout": 60}]}]}}

A command gets a JSON object on stdin (``session_id``, ``cwd``, ``hook_event_name``, and per
event ``prompt``, ``tool_name``/``tool_input``, ``tool_response``, ``output``). Its exit code
decides: 0 goes on (stdout may hold a JSON decision, see `HookOutcome`), 2 blocks with stderr fed
back to the model, anything else is a non-blocking error shown to the user. A hook that runs past
its timeout is killed with its process group. ``matcher`` is a regular expression over the tool
name (PreToolUse, PostToolUse; empty or ``*``: every tool).

Wired: ``SessionStart`` (a session's first run in this process: context), ``UserPromptSubmit``
(block the prompt, or add context), ``PreToolUse`` (block a call, or change its input),
``PostToolUse`` (feedback or context after a call), ``Stop`` (block the final answer: the agent
continues with the reason, at most ``max_stop_blocks`` times a run), ``PreCompact`` (block a
manual compaction, add focus), ``Notification`` (an approval request, a run that ended in error;
informs only), ``SubagentStop`` (like Stop, for a sub-agent's final answer; the payload names
its ``agent_path``). Each hook that
runs yields a `HookRan` event. The project's hooks run only once the user has trusted that exact
hook set (`trust_hooks`, or a face's `hook_trust_request`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import os
import re
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .events import Emit, HookRan, Notice, RunFinished
from .messages import ToolCall, ToolResult

EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PreCompact",
    "Stop",
    "SubagentStop",
    "Notification",
)
# The events whose hooks may block (SessionStart and Notification hooks only inform).
BLOCKING = frozenset({"UserPromptSubmit", "PreToolUse", "PostToolUse", "PreCompact", "Stop",
                      "SubagentStop"})  # fmt: skip
HookFunction = Callable[[dict[str, Any]], Any]  # returns None, a dict (as JSON stdout) or awaits


@dataclass(frozen=True)
class HookCommand:
    command: str | HookFunction
    timeout: float = 60.0
    project: bool = False

    @property
    def label(self) -> str:
        if isinstance(self.command, str):
            return self.command
        return getattr(self.command, "__name__", "hook")


@dataclass(frozen=True)
class HookMatcher:
    matcher: str
    hooks: tuple[HookCommand, ...]

    def matches(self, tool_name: str | None) -> bool:
        if self.matcher in ("", "*") or tool_name is None:
            return True
        try:
            return re.fullmatch(self.matcher, tool_name) is not None
        except re.error:
            return self.matcher == tool_name


@dataclass
class HookOutcome:
    """What the hooks of one event said, together.

    ``blocked`` (exit 2, ``"decision": "block"``, or ``permissionDecision: "deny"``) with
    ``reason``; ``context``: text for the model (``additionalContext``, or a UserPromptSubmit /
    SessionStart hook's plain stdout); ``updated_input``: new tool arguments (PreToolUse,
    ``hookSpecificOutput.updatedInput``); ``messages``: what the user should see (errors of hooks
    that failed, timeouts, invalid JSON: the run goes on).
    """

    blocked: bool = False
    reason: str = ""
    context: str = ""
    updated_input: dict[str, Any] | None = None
    messages: list[str] = field(default_factory=list)
    ran: list[HookRan] = field(default_factory=list)  # one event per hook that ran


class Hooks:
    """The hooks of one agent: ``{EventName: [{"matcher": ..., "hooks": [...]}]}``, where a
    hook is ``{"type": "command", "command": ..., "timeout": ...}`` or a Python callable that
    takes the payload and returns None or a dict (the JSON a command would print)."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        max_stop_blocks: int = 3,
        source: str = "hooks=",
        project: bool = False,
    ) -> None:
        self.matchers: dict[str, list[HookMatcher]] = {}
        self.max_stop_blocks = max_stop_blocks
        if config:
            self.add(config, source=source, project=project)

    def add(self, config: Mapping[str, Any], *, source: str, project: bool = False) -> None:
        for event, entries in config.items():
            if event not in EVENTS:
                raise ConfigError(f"{source}: unknown hook event {event!r} ({', '.join(EVENTS)})")
            if not isinstance(entries, list):
                raise ConfigError(f"{source}: hooks.{event} must be a list")
            for entry in entries:
                self.matchers.setdefault(event, []).append(_matcher(entry, source, project))

    def __bool__(self) -> bool:
        return any(self.matchers.values())

    async def run(
        self, event: str, payload: dict[str, Any], *, tool_name: str | None = None, step: int = 0
    ) -> HookOutcome:
        outcome = HookOutcome()
        hooks = [h for m in self.matchers.get(event, []) if m.matches(tool_name) for h in m.hooks]
        if not hooks:
            return outcome
        data = {"hook_event_name": event, **payload}
        results = await asyncio.gather(*(_run_one(h, data) for h in hooks))
        for hook, (code, stdout, stderr, problem) in zip(hooks, results, strict=True):
            one = HookOutcome()
            if problem:
                timeout = problem.startswith("timed out")
                one.messages.append(f"{event} hook {hook.label!r}: {problem}")
                outcome.ran.append(
                    HookRan(event, hook.label, "timeout" if timeout else "error", problem, step)
                )
                outcome.messages += one.messages
                continue
            if code == 2:
                one.blocked = True
                one.reason = stderr.strip() or "blocked by a hook"
            elif code != 0:
                why = stderr.strip() or stdout.strip() or "no message"
                one.messages.append(f"{event} hook {hook.label!r} failed ({code}): {why}")
            elif isinstance(stdout, dict):  # a callable's answer
                _apply(one, stdout)
            elif (text := stdout.strip()).startswith("{"):
                decision = _json(text)
                if decision is None:
                    one.messages.append(
                        f"{event} hook {hook.label!r} printed invalid JSON: {text[:200]!r}"
                    )
                else:
                    _apply(one, decision)
            elif text and event in ("UserPromptSubmit", "SessionStart", "PreCompact"):
                one.context = text
            if one.blocked and event not in BLOCKING:
                one.blocked = False
                one.messages.append(
                    f"{event} hook {hook.label!r} cannot block ({event} hooks only inform): "
                    f"{one.reason}"
                )
            outcome.ran.append(_ran(event, hook.label, one, code, step))
            outcome.blocked = outcome.blocked or one.blocked
            if one.blocked:
                outcome.reason = _join(outcome.reason, one.reason)
            if one.updated_input is not None:
                outcome.updated_input = {**(outcome.updated_input or {}), **one.updated_input}
            if one.context:
                outcome.context = _join(outcome.context, one.context)
            outcome.messages += one.messages
        return outcome


def _ran(event: str, label: str, one: HookOutcome, code: int, step: int) -> HookRan:
    """The HookRan event of one hook, from what it said."""
    if one.blocked:
        return HookRan(event, label, "blocked", one.reason, step)
    if one.messages:
        return HookRan(event, label, "error", "; ".join(one.messages), step)
    said = []
    if one.updated_input is not None:
        said.append("changed the tool input")
    if one.context:
        said.append("added context")
    return HookRan(event, label, "allowed", ", ".join(said), step)


def _join(a: str, b: str) -> str:
    return f"{a}\n{b}" if a else b


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _apply(outcome: HookOutcome, decision: Mapping[str, Any]) -> None:
    specific = decision.get("hookSpecificOutput")
    specific = specific if isinstance(specific, dict) else {}
    verdict = str(decision.get("decision") or specific.get("permissionDecision") or "").lower()
    reason = str(decision.get("reason") or specific.get("permissionDecisionReason") or "").strip()
    if verdict in ("block", "deny") or decision.get("continue") is False:
        outcome.blocked = True
        outcome.reason = _join(
            outcome.reason, reason or str(decision.get("stopReason") or "blocked by a hook")
        )
    context = specific.get("additionalContext") or decision.get("additionalContext")
    if context:
        outcome.context = _join(outcome.context, str(context))
    updated = specific.get("updatedInput") or decision.get("updatedInput")
    if isinstance(updated, dict):
        outcome.updated_input = {**(outcome.updated_input or {}), **updated}


async def _run_one(hook: HookCommand, data: dict[str, Any]) -> tuple[int, Any, str, str]:
    """(exit code, stdout, stderr, problem) of one hook; a problem is a failure to run it."""
    if not isinstance(hook.command, str):
        try:
            async with asyncio.timeout(hook.timeout):
                value = hook.command(dict(data))
                if inspect.isawaitable(value):
                    value = await value
        except TimeoutError:
            return 1, "", "", f"timed out after {hook.timeout:g} s"
        except Exception as e:  # a user's callable: its error is shown, the run goes on
            return 1, "", "", f"raised {type(e).__name__}: {e}"
        if value is None:
            return 0, "", "", ""
        if isinstance(value, dict):
            return 0, value, "", ""
        return 0, str(value), "", ""
    try:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            hook.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=data.get("cwd") or None,
            env={**os.environ, "GEMMA_AGENT_PROJECT_DIR": str(data.get("cwd") or "")},
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
    except OSError as e:
        return 1, "", "", f"cannot start: {e}"
    try:
        async with asyncio.timeout(hook.timeout):
            out, err = await proc.communicate(json.dumps(data, default=str).encode())
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return 1, "", "", f"timed out after {hook.timeout:g} s (killed)"
    except BaseException:
        _kill_group(proc.pid)
        raise
    return (
        proc.returncode if proc.returncode is not None else 1,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        "",
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _matcher(entry: Any, source: str, project: bool) -> HookMatcher:
    if callable(entry):
        return HookMatcher("", (HookCommand(entry, project=project),))
    if not isinstance(entry, dict) or not isinstance(entry.get("hooks", []), list):
        raise ConfigError(f"{source}: a hook entry is {{'matcher': ..., 'hooks': [...]}}")
    hooks = []
    for raw in entry.get("hooks", []):
        if callable(raw):
            hooks.append(HookCommand(raw, project=project))
            continue
        if not isinstance(raw, dict) or raw.get("type", "command") != "command":
            raise ConfigError(f"{source}: a hook is {{'type': 'command', 'command': ...}}")
        command = raw.get("command")
        timeout = raw.get("timeout", 60)
        if not isinstance(command, str) or not command.strip():
            raise ConfigError(f"{source}: a hook's `command` must be a non-empty string")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"{source}: a hook's `timeout` must be seconds > 0")
        hooks.append(HookCommand(command, float(timeout), project))
    return HookMatcher(str(entry.get("matcher") or ""), tuple(hooks))


# -- settings files and trust -----------------------------------------------------------------


def _config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent"


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); fix or delete the file") from e
    hooks = data.get("hooks", {}) if isinstance(data, dict) else None
    if not isinstance(hooks, dict):
        raise ConfigError(f"{path}: `hooks` must be an object of event names")
    return hooks


def hooks_fingerprint(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def load_hooks(
    workspace: str | Path,
    *,
    trust: bool = False,
    ask: bool = False,
    user_settings: Path | None = None,
    trust_store: Path | None = None,
) -> tuple[Hooks, list[str]]:
    """The user's and the project's hooks, and notices (an untrusted project hook set is left
    out and named). ``trust=True`` (``--trust-hooks``) trusts the project's current set and
    remembers it. ``ask=True``: the face asks the user itself (`hook_trust_request`), so a set
    not answered yet gets no notice."""
    root = Path(workspace).resolve()
    hooks = Hooks()
    user_path = user_settings or _config_dir() / "settings.json"
    hooks.add(_read(user_path), source=str(user_path))
    project_path = root / ".gemma-agent" / "settings.json"
    project = _read(project_path)
    notices: list[str] = []
    if project:
        store = trust_store or _config_dir() / "trusted-projects.json"
        if trust:
            trust_hooks(root, project, store)
        known = _trusted(store).get(str(root), {})
        fingerprint = hooks_fingerprint(project)
        if known.get("hooks") == fingerprint:
            hooks.add(project, source=str(project_path), project=True)
        elif known.get("hooks_declined") == fingerprint:
            notices.append(
                f"The project's hooks ({project_path}) are not run: you declined this set. "
                "Start with --trust-hooks to trust it (asked again when the set changes)."
            )
        elif not ask:
            notices.append(
                f"The project's hooks ({project_path}) are not run: they come with the workspace "
                "and run commands on this machine. Review them, then trust them with "
                "--trust-hooks (remembered until they change)."
            )
    return hooks, notices


@dataclass
class HookTrust:
    """A project's hook set the user has not answered yet (the TUI asks, once per change of
    the set). `answer` remembers the answer per project; trusted, the set joins ``hooks``."""

    workspace: Path
    path: Path
    config: dict[str, Any]
    hooks: Hooks
    store: Path

    def commands(self) -> list[str]:
        """One line per hook: ``Event [matcher]: command``."""
        lines = []
        for event, entries in self.config.items():
            for entry in entries if isinstance(entries, list) else []:
                matcher = entry.get("matcher") if isinstance(entry, dict) else None
                where = f" [{matcher}]" if matcher else ""
                for raw in entry.get("hooks", []) if isinstance(entry, dict) else []:
                    command = raw.get("command") if isinstance(raw, dict) else raw
                    lines.append(f"{event}{where}: {command}")
        return lines

    def answer(self, trust: bool) -> None:
        if trust:
            trust_hooks(self.workspace, self.config, self.store)
            self.hooks.add(self.config, source=str(self.path), project=True)
            return
        data = _trusted(self.store)
        data.setdefault(str(self.workspace), {})["hooks_declined"] = hooks_fingerprint(self.config)
        _write(self.store, data)


def hook_trust_request(
    workspace: str | Path, hooks: Hooks, *, trust_store: Path | None = None
) -> HookTrust | None:
    """The project's hook set when the user has neither trusted nor declined it (this exact
    set); None otherwise. ``hooks``: where a trusted set is added (the agent's)."""
    root = Path(workspace).resolve()
    path = root / ".gemma-agent" / "settings.json"
    project = _read(path)
    if not project:
        return None
    store = trust_store or _config_dir() / "trusted-projects.json"
    known = _trusted(store).get(str(root), {})
    fingerprint = hooks_fingerprint(project)
    if fingerprint in (known.get("hooks"), known.get("hooks_declined")):
        return None
    return HookTrust(root, path, project, hooks, store)


def _trusted(store: Path) -> dict[str, Any]:
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def trust_hooks(workspace: Path, config: Mapping[str, Any], store: Path) -> None:
    data = _trusted(store)
    entry = data.setdefault(str(workspace), {})
    entry["hooks"] = hooks_fingerprint(config)
    entry.pop("hooks_declined", None)
    _write(store, data)


def _write(store: Path, data: dict[str, Any]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(store)


def as_hooks(value: Hooks | Mapping[str, Any] | Sequence[Any] | None) -> Hooks | None:
    if value is None or isinstance(value, Hooks):
        return value
    if isinstance(value, Mapping):
        return Hooks(value)
    raise ConfigError("hooks= takes a Hooks object or {EventName: [{matcher, hooks}]}")


# -- the points where the agent asks its hooks --------------------------------------------------


def _base(session_id: str, cwd: Path) -> dict[str, Any]:
    return {"session_id": session_id, "cwd": str(cwd)}


async def session_start_hook(
    hooks: Hooks, *, session_id: str, cwd: Path, source: str, events: list[Any]
) -> str:
    """SessionStart (a new or resumed session's first run in this process; ``source``:
    "startup" or "resume"): the context its hooks add ("" when none). It cannot block."""
    outcome = await hooks.run("SessionStart", {**_base(session_id, cwd), "source": source})
    events += outcome.ran
    return outcome.context


async def prompt_hook(
    hooks: Hooks, *, session_id: str, cwd: Path, prompt: str, notices: list[Any]
) -> str:
    """UserPromptSubmit: the prompt with the hooks' context added; ConfigError when blocked.
    The hooks' `HookRan` events are appended to ``notices`` (emitted after RunStarted)."""
    outcome = await hooks.run("UserPromptSubmit", {**_base(session_id, cwd), "prompt": prompt})
    notices += outcome.ran
    if outcome.blocked:
        raise ConfigError(f"A UserPromptSubmit hook blocked the prompt: {outcome.reason}")
    if outcome.context:
        return f"{prompt}\n\n<hook-context>\n{outcome.context}\n</hook-context>"
    return prompt


async def pre_tool_hook(
    hooks: Hooks, call: ToolCall, *, session_id: str, cwd: Path, step: int, emit: Emit
) -> tuple[ToolCall, str | None]:
    """PreToolUse: the call (its input possibly changed) and, when blocked, why."""
    outcome = await hooks.run(
        "PreToolUse",
        {**_base(session_id, cwd), "tool_name": call.name, "tool_input": dict(call.arguments)},
        tool_name=call.name,
        step=step,
    )
    for ran in outcome.ran:
        emit(ran)
    if outcome.blocked:
        return call, f"Blocked by a PreToolUse hook: {outcome.reason}"
    if outcome.updated_input is not None:
        call = call.model_copy(update={"arguments": {**call.arguments, **outcome.updated_input}})
    return call, None


async def post_tool_hook(
    hooks: Hooks, call: ToolCall, result: ToolResult, *, session_id: str, cwd: Path, step: int,
    emit: Emit,
) -> ToolResult:  # fmt: skip
    """PostToolUse: the result, with the hooks' feedback (exit 2 / block) or context added."""
    outcome = await hooks.run(
        "PostToolUse",
        {
            **_base(session_id, cwd),
            "tool_name": call.name,
            "tool_input": dict(call.arguments),
            "tool_response": result.content,
            "is_error": result.is_error,
        },
        tool_name=call.name,
        step=step,
    )
    for ran in outcome.ran:
        emit(ran)
    extra = {}
    if outcome.blocked:
        extra["hook_feedback"] = outcome.reason
    if outcome.context:
        extra["hook_context"] = outcome.context
    if not extra:
        return result
    content = result.content
    merged = {**content, **extra} if isinstance(content, dict) else {"value": content, **extra}
    return result.model_copy(update={"content": merged})


async def stop_hook(
    hooks: Hooks,
    *,
    session_id: str,
    cwd: Path,
    output: str,
    blocks: int,
    step: int,
    emit: Emit,
    agent_path: str = "",
) -> str | None:
    """Stop (SubagentStop for a sub-agent, whose path the payload gives as ``agent_path``):
    why the agent must go on (a hook blocked its final answer), or None. Past
    ``max_stop_blocks`` blocks in one run the answer stands (a notice says so)."""
    payload = {**_base(session_id, cwd), "output": output, "stop_hook_active": blocks > 0}
    if agent_path:
        payload["agent_path"] = agent_path
    event = "SubagentStop" if agent_path else "Stop"
    outcome = await hooks.run(event, payload, step=step)
    for ran in outcome.ran:
        emit(ran)
    if not outcome.blocked:
        return None
    if blocks >= hooks.max_stop_blocks:
        emit(Notice(f"a {event} hook blocked {blocks} times; the answer stands", "warning", step))
        return None
    return outcome.reason


async def stop_reason(rt: Any, output: str, step: int, emit: Emit) -> str | None:
    """The loop's question at a final answer: why go on (a Stop hook blocked), or None.
    ``rt`` is the run's ToolRuntime (its hooks, session, workspace, blocks so far)."""
    if not rt.hooks:
        return None
    reason = await stop_hook(
        rt.hooks, session_id=rt.session_id, cwd=rt.workspace, output=output,
        blocks=rt.stop_blocks, step=step, emit=emit, agent_path=rt.agent_path,
    )  # fmt: skip
    rt.stop_blocks += reason is not None
    return reason


async def pre_compact_hook(
    hooks: Hooks, *, session_id: str, cwd: Path, trigger: str, focus: str | None, step: int,
    emit: Emit,
) -> tuple[str | None, str | None]:  # fmt: skip
    """PreCompact (``trigger``: "manual" or "auto"): (the focus of the summary, with what the
    hooks added; why the compaction must not happen, or None). Only a manual compaction can
    be blocked: an automatic one is needed for the run to go on (the block is shown)."""
    outcome = await hooks.run(
        "PreCompact",
        {**_base(session_id, cwd), "trigger": trigger, "custom_instructions": focus or ""},
        step=step,
    )
    for ran in outcome.ran:
        emit(ran)
    if outcome.context:
        focus = _join(focus or "", outcome.context)
    if outcome.blocked and trigger == "auto":
        emit(Notice("a PreCompact hook cannot stop an automatic compaction", "warning", step))
        return focus, None
    return focus, outcome.reason if outcome.blocked else None


def compaction_hook(rt: Any, step: int, emit: Emit) -> Callable[[], Awaitable[str | None]] | None:
    """For the loop's compaction context: runs PreCompact ("auto") when an automatic
    compaction starts; returns the focus the hooks add. None without hooks."""
    if not rt.hooks:
        return None

    async def before() -> str | None:
        focus, _ = await pre_compact_hook(
            rt.hooks, session_id=rt.session_id, cwd=rt.workspace, trigger="auto", focus=None,
            step=step, emit=emit,
        )  # fmt: skip
        return focus

    return before


async def notify_hook(
    hooks: Hooks, *, session_id: str, cwd: Path, message: str, kind: str, step: int, emit: Emit
) -> None:
    """Notification: the agent needs the user (``kind``: "permission_prompt" for an approval
    request, "run_error" for a run that ended in error). It informs only: nothing waits on
    its answer but the hook itself."""
    payload = {**_base(session_id, cwd), "message": message, "notification_type": kind}
    outcome = await hooks.run("Notification", payload, step=step)
    for ran in outcome.ran:
        emit(ran)


class FinishGate:
    """Holds a run's `RunFinished` back, so that the Notification hooks of a run that ended in
    error run (and their `HookRan` events come) before it: RunFinished stays the last event."""

    def __init__(self, put: Emit) -> None:
        self.put = put
        self.held: RunFinished | None = None

    def __call__(self, event: object) -> None:
        if isinstance(event, RunFinished):
            self.held = event
        else:
            self.put(event)

    async def release(self, hooks: Hooks | None, *, session_id: str, cwd: Path) -> None:
        held, self.held = self.held, None
        if held is None:
            return
        try:
            if hooks and held.error and held.reason != "cancelled":
                await notify_hook(
                    hooks, session_id=session_id, cwd=cwd, kind="run_error", step=held.steps,
                    message=f"The run stopped ({held.reason}): {held.error}", emit=self.put,
                )  # fmt: skip
        finally:
            self.put(held)


__all__ = ["EVENTS", "HookOutcome", "HookTrust", "Hooks", "hook_trust_request", "load_hooks"]
