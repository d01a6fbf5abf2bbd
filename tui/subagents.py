"""Sub-agents inside the card of the tool call that runs them: each child's state.

A ``task`` call (or an agent used as a tool) runs a child whose events reach the app wrapped in
`SubagentEvent`; its approval requests arrive as they are, saying who asks. The call's
`ToolCard` keeps one `ChildRun` per child, grandchildren included (keyed by path, each under
the call of its parent that runs it), and draws them as lines of its one renderable: a busy
child costs a repaint per frame, not widgets. A saved session's children (`SubagentRun`) fill
the same state when it is resumed. No textual here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, assert_never

from ..agent import ModelTurn, SubagentRun, ToolCall, ToolResult
from ..events import (
    ApprovalRequested,
    Event,
    HistoryCompacted,
    HookRan,
    Notice,
    PlanUpdated,
    RunFinished,
    RunStarted,
    SubagentEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
)
from .format import result_text

ToolStatus = Literal["queued", "approval", "running", "done", "failed", "denied", "cancelled"]
ChildStatus = Literal["running", "done", "failed", "cancelled"]
OPEN: tuple[ToolStatus, ...] = ("queued", "approval", "running")
TAIL_CHARS = 600  # of the latest thinking or text kept for the live line (bounded cost)


def short_name(path: str) -> str:
    """``main/explore#1`` -> ``explore#1`` (the card shows where it sits)."""
    return path.rpartition("/")[2]


def parent_path(path: str) -> str:
    return path.rpartition("/")[0]


@dataclass
class ChildCall:
    """One tool call of a child."""

    call: ToolCall
    status: ToolStatus = "running"
    result: ToolResult | None = None

    def finish(self, result: ToolResult) -> None:
        self.result = result
        if self.status != "denied":
            self.status = "failed" if result.is_error else "done"


@dataclass
class ChildRun:
    """A sub-agent as its parent's card shows it: live from its events, or from its log."""

    path: str  # "main/explore#1"; a grandchild's is longer
    call_id: str  # its parent's call that runs it
    started: float | None  # None: a saved run (its duration is not logged)
    description: str = ""  # the task call's description argument
    status: ChildStatus = "running"
    step: int = 0  # the latest step seen, or the steps it took once finished
    seconds: float | None = None
    tokens: int = 0  # generated so far (Usage), then its RunFinished total
    calls: dict[str, ChildCall] = field(default_factory=dict)
    notes: list[tuple[int, str]] = field(default_factory=list)  # (calls before it, text)
    tail: str = ""  # the latest thinking or text of the current step
    tail_thinking: bool = True
    tail_step: int = -1
    answer: str = ""
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def latest_line(self) -> str:
        for line in reversed(self.tail.splitlines()):
            if line.strip():
                return line.strip()
        return ""

    def _write_tail(self, text: str, step: int, thinking: bool) -> None:
        if step != self.tail_step or thinking != self.tail_thinking:
            self.tail, self.tail_step, self.tail_thinking = "", step, thinking
        self.tail = (self.tail + text)[-TAIL_CHARS:]

    def call_status(self, call: ToolCall, status: ToolStatus) -> None:
        entry = self.calls.get(call.id)
        if entry is None:
            entry = self.calls[call.id] = ChildCall(call)
        if entry.result is None:
            entry.status = status

    def apply(self, event: Event, now: float) -> None:
        """Take one of the child's events (already unwrapped)."""
        step = getattr(event, "step", 0)
        if step > self.step and self.running:
            self.step = step
        match event:
            case ThinkingDelta():
                self._write_tail(event.text, event.step, True)
            case TextDelta():
                self._write_tail(event.text, event.step, False)
            case ToolCallStarted():
                if event.call.id not in self.calls:
                    self.calls[event.call.id] = ChildCall(event.call)
            case ToolCallFinished():
                entry = self.calls.setdefault(event.call.id, ChildCall(event.call))
                entry.finish(event.result)
            case TurnFinished():
                for result in event.turn.tool_results:
                    done = self.calls.get(result.call_id)
                    if done is not None and done.result is None:
                        done.finish(result)
                if event.turn.text.strip():
                    self.answer = event.turn.text.strip()
            case Usage():
                self.tokens += event.generated_tokens
            case Notice():
                if event.level != "info":
                    self.notes.append((len(self.calls), event.message))
            case RunFinished():
                self.finish(event, now)
            case RunStarted() | PlanUpdated() | HistoryCompacted() | HookRan():
                pass  # nothing its section shows
            case ApprovalRequested() | SubagentEvent():
                pass  # they reach the app unwrapped, with their own path
            case _:
                assert_never(event)

    def finish(self, event: RunFinished, now: float) -> None:
        self.status = {"final_answer": "done", "cancelled": "cancelled"}.get(  # type: ignore[assignment]
            event.reason, "failed"
        )
        self.step = event.steps or self.step
        if event.usage is not None:
            self.tokens = event.usage.generated_tokens
        if self.started is not None:
            self.seconds = max(0.0, now - self.started)
        if event.output is not None and event.reason == "final_answer":
            self.answer = result_text(_jsonable(event.output)).strip()
        self.error = event.error or (None if event.reason == "final_answer" else event.reason)
        self.tail = ""
        for entry in self.calls.values():
            if entry.status in OPEN:
                entry.status = "cancelled"

    def cancel(self) -> None:
        """The run was interrupted: whatever was still going is shown as cancelled."""
        if self.running:
            self.status = "cancelled"
            self.tail = ""
        for entry in self.calls.values():
            if entry.status in OPEN:
                entry.status = "cancelled"

    @classmethod
    def from_saved(cls, run: SubagentRun, description: str = "") -> ChildRun:
        """A finished child of a saved session, from its log's history."""
        child = cls(run.agent, run.call_id, None, description)
        for message in run.history:
            if not isinstance(message, ModelTurn):
                continue
            results = {r.call_id: r for r in message.tool_results}
            for call in message.tool_calls:
                entry = child.calls[call.id] = ChildCall(call, "cancelled")
                result = results.get(call.id)
                if result is not None:
                    entry.finish(result)
            if message.text.strip():
                child.answer = message.text.strip()
        child.status = {"final_answer": "done", "cancelled": "cancelled"}.get(  # type: ignore[assignment]
            run.reason, "failed"
        )
        child.error = None if run.reason == "final_answer" else run.reason or "unknown"
        child.step = run.steps
        child.tokens = int(run.usage.get("generated_tokens", 0))
        return child


def _jsonable(output: Any) -> Any:
    dump = getattr(output, "model_dump", None)  # a typed output (pydantic model)
    return dump(mode="json") if callable(dump) else output
