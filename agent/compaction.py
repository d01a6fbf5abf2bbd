"""History compaction: `Compactor`s turn a long history into a shorter one.

Contract shared by the loop and the compactors (the tiers are implemented below this block).
The loop calls ``await compactor.compact(history, ctx)`` only between steps (never in the middle
of a tool round), and when it returns a `Compaction`, replaces the history and emits its event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .events import HistoryCompacted
from .messages import Message


@dataclass(frozen=True, slots=True)
class CompactionContext:
    # Exact token count of a history as the engine would see it (system turn + tools included).
    count_tokens: Callable[[Sequence[Message]], int]
    # Usable context: the model's max length minus the reserve for the next output.
    limit_tokens: int
    # Compaction was asked for (agent.compact / `/compact`), not triggered by size.
    manual: bool = False
    focus: str | None = None
    # Asks the model for a summary. Built by the loop as an append to the live conversation
    # (prefix cache), thinking off. Takes the instruction text, returns the model's answer.
    summarize: Callable[[str], Awaitable[str]] | None = None


@dataclass(frozen=True, slots=True)
class Compaction:
    history: list[Message]
    event: HistoryCompacted


class Compactor(Protocol):
    name: str

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        """Return a shorter history, or None when nothing needs doing."""
        ...
