"""The event stream every face (SDK, TUI, CLI, evals) consumes.

Events are frozen dataclasses with a snake_case ``kind``. Consumers ``match`` on the class and
end with ``assert_never``. Deltas are not written to session logs; everything else is.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .messages import ModelTurn, ToolCall, ToolResult

# How the run hands an event to its consumers (the stream, the session log, a face's tap).
Emit = Callable[[object], None]

StopReason = Literal[
    "final_answer",
    "max_steps",
    "token_budget",
    "time_limit",
    "cancelled",
    "too_many_errors",
    "loop_detected",
    "engine_error",
    "context_overflow",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    kind: ClassVar[str] = "run_started"
    session_id: str
    task: str
    model: str
    resumed: bool = False
    variant: str = ""  # the model's Gemma 4 variant (its template family); "" when unknown


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    kind: ClassVar[str] = "thinking_delta"
    text: str
    step: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    kind: ClassVar[str] = "text_delta"
    text: str
    step: int


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    kind: ClassVar[str] = "tool_call_started"
    call: ToolCall
    step: int


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    kind: ClassVar[str] = "tool_call_finished"
    call: ToolCall
    result: ToolResult
    step: int
    seconds: float


ApprovalDecision = Literal["allow", "allow_always", "deny"]


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """The run waits until ``respond`` is called (or the future is resolved)."""

    kind: ClassVar[str] = "approval_requested"
    call: ToolCall
    reason: str
    step: int
    # Resolved with an ApprovalDecision. Not serialized.
    answer: asyncio.Future[ApprovalDecision] = field(repr=False, compare=False)
    # Which agent asks: "" for the run's own agent, a sub-agent's path ("main/explore#2")
    # when a child asks (its request reaches the parent's stream as it is, to be answered).
    agent: str = ""

    def respond(self, decision: ApprovalDecision) -> None:
        if not self.answer.done():
            self.answer.set_result(decision)


@dataclass(frozen=True, slots=True)
class PlanItem:
    text: str
    status: Literal["pending", "in_progress", "done", "cancelled"] = "pending"


@dataclass(frozen=True, slots=True)
class PlanUpdated:
    kind: ClassVar[str] = "plan_updated"
    items: tuple[PlanItem, ...]
    step: int


@dataclass(frozen=True, slots=True)
class DroppedItem:
    id: str
    description: str  # one line, for people


@dataclass(frozen=True, slots=True)
class HistoryCompacted:
    kind: ClassVar[str] = "history_compacted"
    tier: str  # the compactor that ran, e.g. "clear_tool_results"
    tokens_before: int
    tokens_after: int
    dropped: tuple[DroppedItem, ...] = ()
    summary: str | None = None
    compaction_id: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    kind: ClassVar[str] = "usage"
    step: int
    prompt_tokens: int
    cached_prompt_tokens: int
    generated_tokens: int
    thinking_tokens: int
    tokens_per_second: float
    context_tokens: int  # exact size of the history as the engine sees it
    context_limit: int  # usable context: max length minus the output reserve
    context_window: int = 0  # the model's whole context (max length); the rest is the reserve
    finish_reason: str | None = None  # the engine's: "stop", "length", ...
    seconds: float = 0.0  # the model call's wall time
    first_token_seconds: float | None = None  # time to the first generated token


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a person should know that is not an error of the run (retries, nudges)."""

    kind: ClassVar[str] = "notice"
    message: str
    level: Literal["info", "warning", "error"] = "info"
    step: int = 0


HookOutcomeKind = Literal["allowed", "blocked", "error", "timeout"]


@dataclass(frozen=True, slots=True)
class HookRan:
    """One hook command (or callable) ran: ``event`` is the hook event (``PreToolUse``, ...),
    ``outcome`` what it said; ``message``: its reason, error, or what it changed."""

    kind: ClassVar[str] = "hook_ran"
    event: str
    command: str
    outcome: HookOutcomeKind
    message: str = ""
    step: int = 0


@dataclass(frozen=True, slots=True)
class TurnFinished:
    kind: ClassVar[str] = "turn_finished"
    turn: ModelTurn
    step: int


@dataclass(frozen=True, slots=True)
class RunFinished:
    kind: ClassVar[str] = "run_finished"
    reason: StopReason
    output: Any = None  # str, or an instance of the agent's output_type
    error: str | None = None
    steps: int = 0
    usage: RunUsage | None = None  # the run's totals


@dataclass
class RunUsage:
    """Totals over one run (summary requests of compaction and sub-agents' runs included)."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    thinking_tokens: int = 0
    tool_calls: int = 0

    @property
    def cache_hit_rate(self) -> float:
        return self.cached_prompt_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


@dataclass(frozen=True, slots=True)
class SubagentEvent:
    """An event of a sub-agent, as its parent's stream carries it.

    ``agent`` is the child's path (``main/explore#2``; a grandchild's is longer), ``call_id``
    the tool call of its parent that runs it. A child's `ApprovalRequested` is not wrapped: it
    reaches the parent's stream as it is (its ``agent`` says who asks) so every face answers it.
    """

    kind: ClassVar[str] = "subagent"
    agent: str
    call_id: str
    event: Event


Event = (
    RunStarted
    | ThinkingDelta
    | TextDelta
    | ToolCallStarted
    | ToolCallFinished
    | ApprovalRequested
    | PlanUpdated
    | HistoryCompacted
    | Usage
    | Notice
    | HookRan
    | TurnFinished
    | RunFinished
    | SubagentEvent
)


def agent_label(path: str) -> str:
    """A sub-agent's path for people, below the top-level run: ``main/explore#2`` →
    ``explore#2``, ``main/general#1/explore#1`` → ``general#1/explore#1``."""
    return path.partition("/")[2] or path


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a snake_case ``kind`` first (for --json output and session logs).

    Messages become their JSON form; the approval future is left out.
    """
    out: dict[str, Any] = {"kind": event.kind}
    for name in event.__dataclass_fields__:
        if name == "answer":
            continue
        out[name] = _jsonable(getattr(event, name))
    return out


def _jsonable(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        # Media bytes stay in the session log; event consumers get name and type only.
        return _without_media_bytes(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and hasattr(value, "kind"):  # a sub-agent's event
        return event_to_dict(value)  # type: ignore[arg-type]
    if isinstance(value, PlanItem | DroppedItem | RunUsage):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _without_media_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_media_bytes(v) for k, v in value.items() if k != "data_b64"}
    if isinstance(value, list):
        return [_without_media_bytes(v) for v in value]
    return value
