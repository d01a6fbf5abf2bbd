"""Undo: every pre-compaction history, kept by compaction id, and the compactor that records
into it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import ConfigError
from ..events import HistoryCompacted
from ..messages import Message, new_id
from .contract import Compaction, CompactionContext, Compactor


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    compaction_id: str
    before: tuple[Message, ...]
    after: tuple[Message, ...]
    event: HistoryCompacted


class CompactionLedger:
    """Keeps every pre-compaction history by compaction id, so a compaction can be undone."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def record(self, before: Sequence[Message], compaction: Compaction) -> LedgerEntry:
        entry = LedgerEntry(
            compaction_id=compaction.event.compaction_id or new_id("c"),
            before=tuple(before),
            after=tuple(compaction.history),
            event=compaction.event,
        )
        self.entries.append(entry)
        return entry

    def undo(self, current: Sequence[Message], compaction_id: str | None = None) -> list[Message]:
        """The history as if the compaction (the newest when no id is given) never ran.

        Messages appended since the compaction are kept. Undoing an older compaction undoes
        the newer ones too (newest first). Raises ConfigError when there is nothing to undo.
        """
        if not self.entries:
            raise ConfigError("Nothing to undo: no compaction has run in this session.")
        ids = [e.compaction_id for e in self.entries]
        if compaction_id is None:
            compaction_id = ids[-1]
        if compaction_id not in ids:
            raise ConfigError(
                f"Unknown compaction id {compaction_id!r}; known ids: {', '.join(ids)}."
            )
        history = list(current)
        while True:
            entry = self.entries[-1]
            after = entry.after
            if len(history) < len(after) or any(
                a is not b and a != b for a, b in zip(after, history, strict=False)
            ):
                raise ConfigError(
                    f"Cannot undo compaction {entry.compaction_id}: the history no longer starts "
                    "with what that compaction produced (it was edited since)."
                )
            history = [*entry.before, *history[len(after) :]]
            self.entries.pop()
            if entry.compaction_id == compaction_id:
                return history


class RecordingCompactor:
    """Runs ``inner`` and records each compaction it makes in ``ledger``, so that it can be
    undone (`CompactionLedger.undo`). The agent wraps its compactor in one per conversation."""

    def __init__(self, inner: Compactor, ledger: CompactionLedger) -> None:
        self.inner = inner
        self.ledger = ledger
        self.name = getattr(inner, "name", "compactor")

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        done = await self.inner.compact(history, ctx)
        if done is not None:
            self.ledger.record(history, done)
        return done
