"""Chains: the tiers run cheapest first, with a trigger that moves with the size of the steps;
`AutoCompaction` is the default one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ...errors import ConfigError
from ..events import HistoryCompacted
from ..messages import Message, new_id
from .clip import ClipToolOutputs
from .contract import (
    CHAIN_TRIGGER,
    DEFAULT_TRIGGER,
    Compaction,
    CompactionContext,
    CompactionState,
    ConversationStates,
)
from .facts import DEFAULT_TOOL_ROLES, ToolRoles
from .summary import SummarizeOldTurns
from .tiers import ClearOldToolResults, DropOldest, Tier


class CompactionChain:
    """Runs tiers cheapest first until the history is under target.

    Nothing runs below the trigger except every-step tiers (clipping). The trigger is
    ``trigger`` x the limit (0.8), earlier when recent steps were big: the room left above it
    must hold twice the largest growth of the last 8 steps (the next step, then the summary
    request on top of it), never earlier than ``min_trigger`` x the limit (0.75). Agent steps
    are usually small against the context, so compaction mostly starts at 80 %: fewer
    compactions (each one breaks the cached prefix and loses detail to a summary) than at a
    fixed 75 %, which is kept for histories whose steps are large. A manual compaction ignores
    the trigger, clears without the batch minimum and always summarizes (with ``ctx.focus``),
    then drops only if still over target.

    The step growths are remembered per conversation, in ``ctx.state`` when the caller gives
    one (a `CompactionState` per conversation), else in the chain (`ConversationStates`: an
    Agent's sessions share its compactor).
    """

    name = "chain"

    def __init__(
        self,
        tiers: Sequence[Tier],
        *,
        trigger: float = CHAIN_TRIGGER,
        target: float = 0.5,
        enabled: bool = True,
        min_trigger: float | None = None,
    ) -> None:
        if not tiers:
            raise ConfigError("CompactionChain needs at least one tier.")
        if not 0 < target <= trigger <= 1:
            raise ConfigError(
                f"CompactionChain: need 0 < target <= trigger <= 1, got target={target}, "
                f"trigger={trigger}."
            )
        low = min(DEFAULT_TRIGGER, trigger) if min_trigger is None else min_trigger
        if not target <= low <= trigger:
            raise ConfigError(
                f"CompactionChain: need target <= min_trigger <= trigger, got target={target}, "
                f"min_trigger={low}, trigger={trigger}."
            )
        self.tiers = list(tiers)
        self.trigger = trigger
        self.min_trigger = low
        self.target = target
        self.enabled = enabled
        self.states = ConversationStates()

    def threshold(
        self, limit: int, history: Sequence[Message], state: CompactionState | None = None
    ) -> float:
        """Tokens at which the compaction of ``history`` starts, given its recent steps
        (``state``: the conversation's, when the caller keeps it)."""
        state = state or self.states.get(history)
        grown = max(state.growth, default=0) if state is not None else 0
        return max(self.min_trigger * limit, min(self.trigger * limit, limit - 2 * grown))

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        if not self.enabled and not ctx.manual:
            return None
        tokens = ctx.tokens if ctx.tokens is not None else ctx.count_tokens(history)
        state = ctx.state or self.states.setdefault(history)
        if state is not None:
            state.observe(tokens)
            ctx = replace(ctx, state=state)  # the tiers share the conversation's state
        first = tokens
        limit = ctx.limit_tokens
        target = int(self.target * limit)
        start_at = self.threshold(limit, history, state)
        triggered = ctx.manual or tokens >= start_at
        current = list(history)
        parts: list[HistoryCompacted] = []
        summarized = False
        for tier in self.tiers:
            if not triggered and not tier.every_step:
                continue
            # Under target, only a manual compaction goes on, to get its summary.
            wanted = ctx.manual and isinstance(tier, SummarizeOldTurns) and not summarized
            if triggered and not tier.every_step and tokens <= target and not wanted:
                continue
            if not tier.every_step and not ctx.manual and ctx.before is not None:
                focus = await ctx.before()  # PreCompact hooks, once
                ctx = replace(ctx, before=None, focus=focus or ctx.focus)
            result = await tier.apply(current, ctx, tokens, target)
            if result is None:
                continue
            current, event = result
            tokens = event.tokens_after
            parts.append(event)
            summarized = summarized or isinstance(tier, SummarizeOldTurns)
            if not triggered and tokens >= start_at:
                triggered = True  # clipping alone was not enough: go on with the rest
        if state is not None:
            state.last_tokens = tokens
        if not parts:
            return None
        event = HistoryCompacted(
            tier="+".join(p.tier for p in parts),
            tokens_before=first,
            tokens_after=tokens,
            dropped=tuple(d for p in parts for d in p.dropped),
            summary=next((p.summary for p in reversed(parts) if p.summary), None),
            compaction_id=new_id("c"),
        )
        return Compaction(history=current, event=event, parts=tuple(parts))


class AutoCompaction(CompactionChain):
    """The default chain: clip, clear, summarize, drop; trigger at 80 % (75 % while steps are
    big, see `CompactionChain`), clear/drop to 50 %, a summary keeps the newest 15 % verbatim.

    ``AutoCompaction(enabled=False)`` turns automatic compaction off (manual still works);
    ``Agent(compactor=None)`` turns compaction off entirely. ``tool_roles`` tells the computed
    facts which of your tools read and change files, run commands, update the plan (`facts`).
    """

    name = "auto"

    def __init__(
        self,
        *,
        trigger: float = CHAIN_TRIGGER,
        target: float = 0.5,
        enabled: bool = True,
        min_trigger: float | None = None,
        max_output_chars: int | None = None,
        keep_turns: int = 4,
        min_clear_tokens: int | None = None,
        keep_fraction: float = 0.15,
        tool_roles: ToolRoles = DEFAULT_TOOL_ROLES,
    ) -> None:
        tiers: list[Tier] = [
            ClipToolOutputs(max_chars=max_output_chars),
            ClearOldToolResults(keep_turns=keep_turns, min_tokens=min_clear_tokens),
            SummarizeOldTurns(keep_fraction=keep_fraction, tool_roles=tool_roles),
            DropOldest(tool_roles=tool_roles),
        ]
        super().__init__(
            tiers, trigger=trigger, target=target, enabled=enabled, min_trigger=min_trigger
        )


def default_compactor() -> AutoCompaction:
    return AutoCompaction()
