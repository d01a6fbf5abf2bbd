"""The contract between the loop and the compactors: what goes in, what comes out, and what a
compactor remembers about a conversation between two calls."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..events import HistoryCompacted
from ..messages import Message, ModelTurn

# Compact when the history reaches this share of the usable limit (the model's length minus the
# output reserve, so the next output always fits): a tier used alone, and the earliest a chain
# starts (when recent steps were big, see `CompactionChain`).
DEFAULT_TRIGGER = 0.75
# Where a chain starts when steps are small against the context (the usual case). Against a
# fixed 0.75: 4K run of bench/compaction.py 89.2 -> 90.2 % of prompt tokens from the prefix cache
# (40 steps), 89.1 -> 90.9 % (60 steps, 4 compactions -> 3).
CHAIN_TRIGGER = 0.8


class SpillSink(Protocol):
    """Where full tool outputs go when compaction shortens them (tools.SpillStore fits)."""

    def put(self, text: str, *, label: str) -> str: ...


@dataclass(eq=False, slots=True)
class CompactionState:
    """What compaction remembers about one conversation between two calls.

    A caller that owns its conversations gives each one its own (``CompactionContext(state=
    ...)``). Without one, a compactor keeps a state per conversation itself (see
    `ConversationStates`). It is a memory for speed and for the trigger, never for correctness:
    a fresh state only costs a re-check of sizes and forgets the recent step growths.
    """

    # Tokens of the history at the end of the last call; None before the first call.
    last_tokens: int | None = None
    # How much the history grew at each of the last 8 calls (see `CompactionChain`).
    growth: deque[int] = field(default_factory=lambda: deque(maxlen=8))
    # Model turns whose results `ClipToolOutputs` already checked, by message id (the object is
    # compared too: a turn changed since, under the same id, is checked again).
    checked: dict[str, ModelTurn] = field(default_factory=dict)

    def observe(self, tokens: int) -> None:
        """Note the size of the history at the start of a call (records the growth)."""
        if self.last_tokens is not None and tokens > self.last_tokens:
            self.growth.append(tokens - self.last_tokens)
        self.last_tokens = tokens


class ConversationStates:
    """A compactor's `CompactionState` per conversation, for callers that pass none.

    A conversation is known by the ``id`` of its first message (the task, which no tier ever
    removes): a unique string that no other message takes, unlike ``id()`` of an object, which
    Python reuses once the object is freed. The newest ``size`` conversations are kept.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._states: OrderedDict[str, CompactionState] = OrderedDict()

    def get(self, history: Sequence[Message]) -> CompactionState | None:
        """The state of ``history``'s conversation, None when it has none yet."""
        if not history:
            return None
        return self._states.get(history[0].id)

    def setdefault(self, history: Sequence[Message]) -> CompactionState | None:
        """The state of ``history``'s conversation, created when new (None for no history)."""
        if not history:
            return None
        key = history[0].id
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= self.size:
                self._states.popitem(last=False)  # forget the least recent conversation
            state = self._states[key] = CompactionState()
        else:
            self._states.move_to_end(key)
        return state


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
    # The run's spill store (the one `recall_output` reads). Without it, cleared and clipped
    # outputs can only come back through undo.
    spill: SpillSink | None = None
    # Exact count of the history passed to compact(), when the caller already knows it.
    tokens: int | None = None
    # This conversation's memory between calls; None: the compactor keeps one per conversation.
    state: CompactionState | None = None
    # Called once when an automatic compaction starts (past the trigger; not for every-step
    # clipping): the PreCompact hooks. Returns a focus for the summary, or None.
    before: Callable[[], Awaitable[str | None]] | None = None


@dataclass(frozen=True, slots=True)
class Compaction:
    history: list[Message]
    event: HistoryCompacted
    # When a chain ran several tiers: one event per tier, in order (``event`` sums them up).
    parts: tuple[HistoryCompacted, ...] = ()


class Compactor(Protocol):
    name: str

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        """Return a shorter history, or None when nothing needs doing."""
        ...
