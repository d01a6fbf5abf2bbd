"""Undo: the ledger keeps each pre-compaction history; `RecordingCompactor` records into it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from gemma_agent.agent.compaction import (
    CompactionContext,
    CompactionLedger,
    DropOldest,
    RecordingCompactor,
)
from gemma_agent.agent.messages import Message, UserMessage
from gemma_agent.errors import ConfigError


def count(history: Sequence[Message]) -> int:
    return sum(len(m.content) for m in history if isinstance(m, UserMessage))


async def test_recording_compactor_records_what_it_compacts_and_undo_restores_it() -> None:
    ledger = CompactionLedger()
    compactor = RecordingCompactor(DropOldest(), ledger)
    assert compactor.name == "drop_oldest"
    ctx = CompactionContext(count_tokens=count, limit_tokens=1_000)
    history: list[Message] = [UserMessage(content="task")]
    assert await compactor.compact(history, ctx) is None and ledger.entries == []
    history += [UserMessage(content=str(i) * 200) for i in range(5)]
    done = await compactor.compact(history, ctx)
    assert done is not None
    (entry,) = ledger.entries
    assert entry.before == tuple(history) and entry.after == tuple(done.history)
    assert entry.compaction_id == done.event.compaction_id
    later = [*done.history, UserMessage(content="more")]
    assert ledger.undo(later) == [*history, later[-1]]
    with pytest.raises(ConfigError, match="Nothing to undo"):
        ledger.undo(later)
