"""The event types of a run: what `Agent.stream` yields and every face consumes.

    from gemma_agent.events import RunFinished, ToolCallFinished

    async for event in agent.stream("Fix the failing test"):
        match event:
            case ToolCallFinished(call=call, result=result):
                print(call.name, result.is_error)
            case RunFinished(reason=reason, output=output):
                print(reason, output)

Every event is a frozen dataclass with a snake_case ``kind``; `event_to_dict` gives its JSON
form (as ``gemma-agent run --json`` prints it). `ApprovalRequested` is the one event that
expects an answer: ``event.respond("allow" | "allow_always" | "deny")``.
"""

from __future__ import annotations

from .agent.events import (
    ApprovalDecision,
    ApprovalRequested,
    DroppedItem,
    Event,
    HistoryCompacted,
    HookOutcomeKind,
    HookRan,
    Notice,
    PlanItem,
    PlanUpdated,
    RunFinished,
    RunStarted,
    RunUsage,
    StopReason,
    SubagentEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
    agent_label,
    event_to_dict,
)

__all__ = [
    "ApprovalDecision",
    "ApprovalRequested",
    "DroppedItem",
    "Event",
    "HistoryCompacted",
    "HookOutcomeKind",
    "HookRan",
    "Notice",
    "PlanItem",
    "PlanUpdated",
    "RunFinished",
    "RunStarted",
    "RunUsage",
    "StopReason",
    "SubagentEvent",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallFinished",
    "ToolCallStarted",
    "TurnFinished",
    "Usage",
    "agent_label",
    "event_to_dict",
]
