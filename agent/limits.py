"""Run limits, the per-step thinking budget and the loop guard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .messages import ToolCall


@dataclass(frozen=True, slots=True)
class ThinkingBudget:
    """Thinking tokens allowed per step: more to plan and to recover, less for routine steps.

    ``None`` means no cap. An int given to ``Agent(thinking_budget=N)`` becomes
    ``ThinkingBudget(first=2*N, after_failure=2*N, routine=N)``.
    """

    first: int | None = 4096
    after_failure: int | None = 2048
    routine: int | None = 1024

    @classmethod
    def of(cls, value: int | ThinkingBudget | None) -> ThinkingBudget:
        if value is None:
            return cls()
        if isinstance(value, ThinkingBudget):
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"thinking_budget must be a non-negative int, got {value!r}")
        return cls(first=2 * value, after_failure=2 * value, routine=value)

    def for_step(self, step: int, *, after_failure: bool) -> int | None:
        if step == 1:
            return self.first
        return self.after_failure if after_failure else self.routine


@dataclass(frozen=True, slots=True)
class RunLimits:
    max_steps: int = 50
    max_tokens: int | None = None  # generated tokens over the whole run
    time_limit: float | None = None  # seconds of wall time per run
    max_consecutive_errors: int = 5  # steps in a row that only produced errors
    max_redecodes: int = 2  # re-decodes of a malformed output before an error result
    loop_nudge_after: int = 3  # identical calls in a row before the model is warned
    loop_stop_after: int = 5  # identical calls in a row that stop the run

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError("max_tokens must be positive (or None for no budget)")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError("time_limit must be a positive number of seconds (or None)")
        if not 1 <= self.loop_nudge_after <= self.loop_stop_after:
            raise ConfigError("need 1 <= loop_nudge_after <= loop_stop_after")


class LoopGuard:
    """Counts how many steps in a row made exactly the same calls (names and arguments)."""

    def __init__(self) -> None:
        self._last: str | None = None
        self.repeats = 0

    def observe(self, calls: Sequence[ToolCall]) -> int:
        if not calls:
            self._last, self.repeats = None, 0
            return 0
        key = json.dumps([(c.name, c.arguments) for c in calls], sort_keys=True, default=repr)
        self.repeats = self.repeats + 1 if key == self._last else 1
        self._last = key
        return self.repeats
