"""Executing one turn's tool calls: approvals first, then the calls, concurrently.

Calls run under a TaskGroup; a tool marked ``sequential`` runs alone, in call order, between
the concurrent batches around it. A denied, invalid or unknown call becomes an error result the
model reads. Results are reported as soon as each call finishes (the session log writes them
then), so a crash loses only the calls still running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tools import PlanChanged, ToolContext, ToolNotice, ToolRegistry
from .events import (
    ApprovalDecision,
    ApprovalRequested,
    Emit,
    Notice,
    PlanItem,
    PlanUpdated,
    ToolCallFinished,
    ToolCallStarted,
)
from .messages import Attachment, ToolCall, ToolResult

ApprovalCallback = Callable[[ApprovalRequested], Awaitable[ApprovalDecision | None]]
# A call handled by the loop itself (final_answer): returns its result directly.
Special = Callable[[ToolCall], ToolResult]

_PLAN_STATUS = {"pending", "in_progress", "done", "cancelled"}


@dataclass
class ToolRuntime:
    registry: ToolRegistry
    workspace: Path
    policy: Any = None  # tools.ApprovalPolicy or None (= allow everything)
    on_approval: ApprovalCallback | None = None
    # Whether the consumer of the event stream answers ApprovalRequested (the TUI does). With
    # neither that nor on_approval, a call the policy asks about is denied at once.
    answers_approvals: bool = False
    approval_timeout: float | None = None  # seconds to wait for an answer; None: no limit
    deps: Any = None
    spill: Any = None  # tools.SpillStore
    special: dict[str, Special] = field(default_factory=dict)
    validated: dict[str, Any] = field(default_factory=dict)  # call id -> its checked arguments
    # Checks the media a tool returns (modalities, limits) before they join the history;
    # raises ConfigError, which becomes the call's error result. None: media pass unchecked.
    media_check: Callable[[Sequence[Attachment]], None] | None = None
    hooks: Any = None  # agent.hooks.Hooks: PreToolUse / PostToolUse (and Stop, in the loop)
    session_id: str = ""
    stop_blocks: int = 0  # final answers a Stop hook blocked in this run
    # A sub-agent's path ("main/explore#1"; "" for a top-level run): its approval requests
    # say who asks, and its final answers go through SubagentStop hooks instead of Stop.
    agent_path: str = ""
    parent: Any = None  # agent.subagents.Parent: what this run hands tools that run agents


def tool_event(event: object, step: int) -> object | None:
    """Translate what a tool emits (PlanChanged, ToolNotice, our events) into a run event."""
    match event:
        case PlanChanged(items=items):
            return PlanUpdated(
                tuple(
                    PlanItem(text, status if status in _PLAN_STATUS else "pending")  # type: ignore[arg-type]
                    for text, status in items
                ),
                step,
            )
        case ToolNotice(message=message, level=level):
            return Notice(message, level if level in ("warning", "error") else "info", step)  # type: ignore[arg-type]
        case _ if hasattr(event, "kind"):
            return event
    return None


async def execute_calls(
    rt: ToolRuntime,
    calls: Sequence[ToolCall],
    *,
    step: int,
    emit: Emit,
    invalid: dict[str, str],
    on_result: Callable[[ToolResult], None],
) -> dict[str, ToolResult]:
    """Every call's result by call id; ``invalid`` holds parse errors. ``on_result`` sees each
    result as its call finishes (a cancelled round keeps what it saw)."""
    results: dict[str, ToolResult] = {}

    def tool_emit(event: object) -> None:
        ev = tool_event(event, step)
        if ev is not None:
            emit(ev)

    def finish(call: ToolCall, result: ToolResult, started: float) -> None:
        results[call.id] = result
        on_result(result)
        emit(ToolCallFinished(call, result, step, time.perf_counter() - started))

    for call in calls:
        emit(ToolCallStarted(call, step))
    runnable: list[ToolCall] = []
    for call in calls:  # approvals first, in call order, before anything runs
        t0 = time.perf_counter()
        if call.id in invalid:
            finish(call, _error(call, invalid[call.id]), t0)
        elif call.name in rt.special:
            finish(call, rt.special[call.name](call), t0)
        elif (tool := rt.registry.get(call.name)) is None:
            runnable.append(call)  # the registry answers with the closest names
        else:
            if rt.hooks:  # PreToolUse: may block the call or change its input
                from .hooks import pre_tool_hook

                changed, denial = await pre_tool_hook(
                    rt.hooks, call, session_id=rt.session_id, cwd=rt.workspace, step=step, emit=emit
                )
                if denial is not None:
                    finish(call, _error(call, denial), t0)
                    continue
                if changed is not call:
                    rt.validated.pop(call.id, None)  # checked again, as changed
                    call = changed
            denial = await _approve(rt, tool, call, step, emit)
            if denial is not None:
                finish(call, _error(call, denial), t0)
            else:
                runnable.append(call)

    async def run_one(call: ToolCall) -> None:
        t0 = time.perf_counter()
        ctx = ToolContext(rt.workspace, rt.deps, call.id, tool_emit, parent=rt.parent, **_spill(rt))
        tool = rt.registry.get(call.name)
        if tool is not None and call.id in rt.validated:
            outcome = await rt.registry.run(tool, rt.validated.pop(call.id), ctx)
        else:
            outcome = await rt.registry.call(call.name, call.arguments, ctx)
        result = ToolResult(
            call_id=call.id,
            name=call.name,
            content=outcome.content,
            is_error=outcome.is_error,
            spill_id=outcome.spill_id,
        )
        if outcome.media:
            result = _with_media(rt, result, outcome.media)
        if rt.hooks:
            from .hooks import post_tool_hook

            result = await post_tool_hook(
                rt.hooks, call, result, session_id=rt.session_id, cwd=rt.workspace, step=step,
                emit=emit,
            )  # fmt: skip
        finish(call, result, t0)

    for batch in _batches(rt, runnable):
        if len(batch) == 1:
            await run_one(batch[0])
            continue
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(run_one(c), name=f"tool:{c.name}") for c in batch]
        del tasks
    return results


def _with_media(rt: ToolRuntime, result: ToolResult, media: Sequence[Any]) -> ToolResult:
    """The tool's images/audio as the result's attachments, or an error the model reads."""
    from ..errors import ConfigError
    from .media import tool_attachment

    try:
        attachments = tuple(tool_attachment(m) for m in media)
        if rt.media_check is not None:
            rt.media_check(attachments)
    except ConfigError as e:
        return result.model_copy(
            update={"content": f"{result.name} returned media the model cannot see: {e}",
                    "is_error": True}
        )  # fmt: skip
    return result.model_copy(update={"attachments": attachments})


def _spill(rt: ToolRuntime) -> dict[str, Any]:
    return {"spill": rt.spill} if rt.spill is not None else {}


def _batches(rt: ToolRuntime, calls: Sequence[ToolCall]) -> list[list[ToolCall]]:
    """Consecutive non-sequential calls share a batch; a sequential tool gets its own."""
    out: list[list[ToolCall]] = []
    current: list[ToolCall] = []
    for call in calls:
        tool = rt.registry.get(call.name)
        if tool is not None and tool.sequential:
            if current:
                out.append(current)
                current = []
            out.append([call])
        else:
            current.append(call)
    if current:
        out.append(current)
    return out


async def _approve(rt: ToolRuntime, tool: Any, call: ToolCall, step: int, emit: Emit) -> str | None:
    """None when the call may run, else the reason it may not (the model reads it)."""
    if rt.policy is None:
        return None
    decision = rt.policy.decide(tool, call.arguments)
    if decision.action == "allow":
        return None
    if decision.action == "deny":
        return f"Denied by the approval policy: {decision.reason}"
    if rt.on_approval is None and not rt.answers_approvals:
        emit(Notice(f"{call.name} needs approval; no one can answer: denied", "warning", step))
        return (
            f"This call needs a person's approval ({decision.reason}) and no one is available "
            "to give it, so it was not run. Do not retry it; use another approach that needs "
            "no approval, or finish and say what needs approving."
        )
    answer: asyncio.Future[ApprovalDecision] = asyncio.get_running_loop().create_future()
    request = ApprovalRequested(call, decision.reason, step, answer, agent=rt.agent_path)
    emit(request)
    who = f"{rt.agent_path}: " if rt.agent_path else ""
    notified = _notify(rt, f"{who}{call.name} needs your approval: {decision.reason}", step, emit)
    try:
        async with asyncio.timeout(rt.approval_timeout):
            if rt.on_approval is not None:
                choice = await rt.on_approval(request)
                if choice is not None:
                    request.respond(choice)
            choice = await asyncio.shield(answer)
    except TimeoutError:
        request.respond("deny")  # a face still showing the request sees it answered
        waited = f"{rt.approval_timeout:g} s"
        emit(Notice(f"{call.name}: no answer within {waited}: denied", "warning", step))
        return (
            f"No one approved this call within {waited}, so it was not run. "
            "Do not retry it; use another approach, or finish and say what needs approving."
        )
    except asyncio.CancelledError:
        if notified is not None:
            notified.cancel()  # its hook's process group is killed
        raise
    finally:
        if notified is not None:
            await asyncio.wait({notified})
    if choice == "allow_always":
        rt.policy.remember(tool, call.arguments)
    if choice in ("allow", "allow_always"):
        return None
    return "The user denied this call. Do not retry it; choose another approach or ask."


def _notify(rt: ToolRuntime, message: str, step: int, emit: Emit) -> asyncio.Task[None] | None:
    """Notification hooks for an approval request, run while the request waits for its answer."""
    if not rt.hooks:
        return None
    from .hooks import notify_hook

    return asyncio.create_task(
        notify_hook(
            rt.hooks, session_id=rt.session_id, cwd=rt.workspace, message=message,
            kind="permission_prompt", step=step, emit=emit,
        ),
        name="hook:Notification",
    )  # fmt: skip


def _error(call: ToolCall, message: str) -> ToolResult:
    return ToolResult(call_id=call.id, name=call.name, content=message, is_error=True)
