"""History compaction: `Compactor`s turn a long history into a shorter one.

Contract shared by the loop and the compactors (`contract.py`; the tiers follow below).
The loop calls ``await compactor.compact(history, ctx)`` only between steps (never in the middle
of a tool round), and when it returns a `Compaction`, replaces the history and emits its event.

Tiers, cheapest first; each is a `Compactor` usable alone, `CompactionChain` runs them in order:

1. `ClipToolOutputs`     oversize tool results keep head + tail and a marker; full text spilled.
                         Runs every step (it only ever touches fresh results: no cache cost).
2. `ClearOldToolResults` results older than the last K model steps become one-line stubs, in
                         batches freeing at least ``min_tokens`` (so the cached prefix breaks
                         rarely); ``recall_output("<spill id>")`` brings one back.
3. `SummarizeOldTurns`   the model summarizes the oldest steps; computed facts (files, tools,
                         plan, last test, errors) are inserted verbatim; the summary goes right
                         after the task, so the system turn + task stay in the prefix cache.
4. `DropOldest`          last resort: shrink summaries to their facts, then drop the oldest
                         messages; never the task, pinned messages or the latest message.

`AutoCompaction` (what `default_compactor()` returns) triggers at ``trigger`` x the limit (0.8;
down to 0.75 while steps are big, so that the summary request still fits);
clearing and dropping work down to ``target`` x the limit (0.5), a summary keeps only the newest
``keep_fraction`` (0.15) verbatim, so it lands lower (about a quarter to a third of the limit with
the system turn). Each compaction costs one cache break (everything after the task is computed
again), so a deep cut that makes them rare is cheaper overall (measured: bench/compaction.py).
The summary request is an append to the live prompt (`ModelLayer.summary_prompt`): it reuses
the whole cached conversation.
``enabled=False`` is the off switch for automatic compaction; a manual one (``ctx.manual``, with
``ctx.focus``) always summarizes. Pinned messages are never changed, moved only to stay ahead
of the summary. Computed facts are kept structured in ``SummaryMessage.facts`` and merged by
every later summary or drop, so they survive every compaction. A call is never separated from
its result: tiers replace result contents or whole `ModelTurn`s.

What a compactor remembers about a conversation between two calls (the recent step growths of
a chain, the results clipping already checked) is a `CompactionState`: one per conversation,
given in ``ctx.state`` by a caller that keeps it, else kept by the compactor itself per
conversation (`ConversationStates`, known by the id of the conversation's first message).
Which tools read or change files, run commands or update the plan, for the computed facts,
is told by `ToolRoles` (the built-in tools by default; extend it for yours).

Modules: `contract` (context, result, protocol, state), `ledger` (undo, `RecordingCompactor`),
`history` (sizes and descriptions of messages), `facts` (computed facts, `ToolRoles`), `clip`
(tier 1, `fit_fresh_results`), `tiers` (the `Tier` base, tiers 2 and 4), `summary` (tier 3),
`chain` (`CompactionChain`, `AutoCompaction`).

How the loop uses it (and undo)::

    ledger = CompactionLedger()
    ctx = CompactionContext(count_tokens=..., limit_tokens=..., summarize=..., spill=spill_store,
                            state=conversation_state)
    compaction = await compactor.compact(history, ctx)
    if compaction is not None:
        ledger.record(history, compaction)      # keeps the pre-compaction history
        history = compaction.history
        emit(compaction.event)
    ...
    history = ledger.undo(history)              # agent.undo_compaction(): newest first

(``RecordingCompactor(compactor, ledger)`` does the recording for the agent.)
"""

from .chain import AutoCompaction, CompactionChain, default_compactor
from .clip import ClipToolOutputs, fit_fresh_results
from .contract import CHAIN_TRIGGER as CHAIN_TRIGGER
from .contract import DEFAULT_TRIGGER as DEFAULT_TRIGGER
from .contract import Compaction, CompactionContext, Compactor, SpillSink
from .contract import CompactionState as CompactionState
from .contract import ConversationStates as ConversationStates
from .facts import DEFAULT_TOOL_ROLES as DEFAULT_TOOL_ROLES
from .facts import ToolRoles as ToolRoles
from .facts import compute_facts, render_facts
from .ledger import CompactionLedger, LedgerEntry
from .ledger import RecordingCompactor as RecordingCompactor
from .summary import SUMMARY_INSTRUCTION as SUMMARY_INSTRUCTION
from .summary import SummarizeOldTurns
from .tiers import ClearOldToolResults, DropOldest, Tier

# Also importable from here, for the agent's own wiring: ConversationStates, RecordingCompactor,
# SUMMARY_INSTRUCTION, DEFAULT_TRIGGER, CHAIN_TRIGGER.
__all__ = [
    "DEFAULT_TOOL_ROLES",
    "AutoCompaction",
    "ClearOldToolResults",
    "ClipToolOutputs",
    "Compaction",
    "CompactionChain",
    "CompactionContext",
    "CompactionLedger",
    "CompactionState",
    "Compactor",
    "DropOldest",
    "LedgerEntry",
    "SpillSink",
    "SummarizeOldTurns",
    "Tier",
    "ToolRoles",
    "compute_facts",
    "default_compactor",
    "fit_fresh_results",
    "render_facts",
]
