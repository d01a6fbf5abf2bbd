"""The `Tier` base, and the tiers that shorten a history without the model and without
clipping: clear old tool results (tier 2), drop the oldest messages (tier 4). Clipping (tier 1)
is in `clip.py`, the summary (tier 3) in `summary.py`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from ...errors import ConfigError
from ..events import DroppedItem, HistoryCompacted
from ..messages import Message, ModelTurn, SummaryMessage, ToolCall, ToolResult, new_id
from .contract import (
    DEFAULT_TRIGGER,
    Compaction,
    CompactionContext,
    SpillSink,
)
from .facts import (
    DEFAULT_TOOL_ROLES,
    TEST_COMMAND,
    ToolRoles,
    command_outcome,
    compute_facts,
    facts_summary,
)
from .history import (
    arg_summary,
    calls_by_id,
    content_shape,
    describe,
    estimate_sizes,
    is_stub,
    protected_indices,
    proxy_size,
    result_text,
    size_chars,
    task_index,
)


class Tier:
    """Base of the tiers: a `Compactor` alone (size trigger built in) and a step of a chain.

    Subclasses implement `apply`; `CompactionChain` calls it with the known token count.
    """

    name = "tier"
    # Tiers that run on every call whatever the size (clipping fresh results costs no cache).
    every_step = False

    def __init__(self, *, trigger: float = DEFAULT_TRIGGER, target: float = 0.5) -> None:
        if not 0 < target <= trigger <= 1:
            raise ConfigError(
                f"{type(self).__name__}: need 0 < target <= trigger <= 1, got "
                f"target={target}, trigger={trigger}."
            )
        self.trigger = trigger
        self.target = target

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        tokens = ctx.tokens if ctx.tokens is not None else ctx.count_tokens(history)
        if not (self.every_step or ctx.manual or tokens >= self.trigger * ctx.limit_tokens):
            return None
        result = await self.apply(list(history), ctx, tokens, int(self.target * ctx.limit_tokens))
        if result is None:
            return None
        new_history, event = result
        return Compaction(history=new_history, event=event, parts=(event,))

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        """Compact ``history`` (``tokens`` long) towards ``target``; None when nothing done."""
        raise NotImplementedError

    def _event(
        self,
        before: int,
        after: int,
        dropped: Iterable[DroppedItem] = (),
        summary: str | None = None,
    ) -> HistoryCompacted:
        return HistoryCompacted(
            tier=self.name,
            tokens_before=before,
            tokens_after=after,
            dropped=tuple(dropped),
            summary=summary,
            compaction_id=new_id("c"),
        )


# --------------------------------------------------------------------------------------------
# Tier 2: clear old tool results


class ClearOldToolResults(Tier):
    """Results older than the last ``keep_turns`` model steps become one-line stubs.

    All of them at once and only when that frees at least ``min_tokens`` (default: a tenth of
    the limit; ignored when the compaction was asked for), so the cached prefix breaks once per
    batch, not every step. The stub keeps what is a fact: tool, argument, size, error, exit
    code and test verdict.
    """

    name = "clear_tool_results"

    def __init__(
        self,
        *,
        keep_turns: int = 4,
        min_tokens: int | None = None,
        trigger: float = DEFAULT_TRIGGER,
        target: float = 0.5,
    ) -> None:
        super().__init__(trigger=trigger, target=target)
        if keep_turns < 0 or (min_tokens is not None and min_tokens < 0):
            raise ConfigError("ClearOldToolResults: keep_turns and min_tokens must be >= 0.")
        self.keep_turns = keep_turns
        self.min_tokens = min_tokens

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        turns = [i for i, m in enumerate(history) if isinstance(m, ModelTurn)]
        old = turns[: max(0, len(turns) - self.keep_turns)]
        min_tokens = self.min_tokens if self.min_tokens is not None else ctx.limit_tokens // 10
        if not ctx.manual:
            # A dry run without spilling: when the batch is clearly too small, stop here (no
            # spill writes, no exact count), as happens at every step until a batch is ready.
            preview, _ = self._clear(history, old, None)
            sizes = estimate_sizes(history, ctx, tokens)
            freed = sum(
                sizes[i] * (1 - proxy_size(preview[i]) / max(1, proxy_size(history[i])))
                for i in old
            )
            if freed < 0.8 * min_tokens:
                return None
        out, dropped = self._clear(history, old, ctx.spill)
        if not dropped:
            return None
        after = ctx.count_tokens(out)
        if tokens - after < min_tokens and not ctx.manual:
            return None
        return out, self._event(tokens, after, dropped)

    def _clear(
        self, history: list[Message], old: list[int], spill: SpillSink | None
    ) -> tuple[list[Message], list[DroppedItem]]:
        out = list(history)
        dropped: list[DroppedItem] = []
        for i in old:
            turn = history[i]
            assert isinstance(turn, ModelTurn)
            if turn.pinned or not turn.tool_results:
                continue
            calls = calls_by_id(turn)
            results = []
            changed = False
            for r in turn.tool_results:
                stub = None if is_stub(r) else self._stub(r, calls.get(r.call_id), spill)
                if stub is None or size_chars(stub.content) >= size_chars(r.content):
                    results.append(r)
                    continue
                results.append(stub)
                dropped.append(DroppedItem(id=r.call_id, description=str(stub.content)[1:-1]))
                changed = True
            if changed:
                out[i] = turn.model_copy(update={"tool_results": tuple(results)})
        return out, dropped

    def _stub(
        self, result: ToolResult, call: ToolCall | None, spill: SpillSink | None
    ) -> ToolResult:
        spill_id = result.spill_id
        arg = arg_summary(call)
        label = f"{result.name} {arg}".strip()
        if spill_id is None and spill is not None:
            spill_id = spill.put(result_text(result.content), label=label)
        what = "error, " if result.is_error else ""
        command = call.arguments.get("command") if call is not None else None
        if isinstance(result.content, dict) or isinstance(command, str):
            # Keep the outcome of commands (exit code, test verdict) visible: it is a fact.
            outcome = command_outcome(command if isinstance(command, str) else "", result)
            if outcome["exit_code"] is not None:
                what += f"exit {outcome['exit_code']}, "
            if isinstance(command, str) and TEST_COMMAND.search(command) and outcome["line"]:
                what += f"{json.dumps(outcome['line'], ensure_ascii=False)}, "
        media = f", {len(result.attachments)} attachments" if result.attachments else ""
        recall = f'; recall with recall_output("{spill_id}")' if spill_id else ""
        text = f"[{label}: {what}{content_shape(result.content)}{media}, cleared{recall}]"
        return result.model_copy(update={"content": text, "spill_id": spill_id, "attachments": ()})


# --------------------------------------------------------------------------------------------
# Tier 4: drop oldest


class DropOldest(Tier):
    """Last resort: shrink summaries to their computed facts, then drop the oldest messages
    until under target. Never the task, the latest user message, pinned messages or the
    latest message. The facts of dropped steps are folded into the summary (one is created
    right after the task when there is none), so computed facts survive this tier too.
    ``tool_roles``: which tools read and change files, run commands, update the plan (`facts`)."""

    name = "drop_oldest"

    def __init__(
        self,
        *,
        tool_roles: ToolRoles = DEFAULT_TOOL_ROLES,
        trigger: float = DEFAULT_TRIGGER,
        target: float = 0.5,
    ) -> None:
        super().__init__(trigger=trigger, target=target)
        self.tool_roles = tool_roles

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        out = list(history)
        dropped: list[DroppedItem] = []
        for i, m in enumerate(out):
            if isinstance(m, SummaryMessage) and not m.pinned and m.facts:
                facts_only = facts_summary(m.facts)
                if len(facts_only) < len(m.content):
                    out[i] = m.model_copy(update={"content": facts_only})
                    dropped.append(DroppedItem(id=m.id, description="summary prose dropped"))
        current = ctx.count_tokens(out) if dropped else tokens
        protected = protected_indices(out)
        droppable = [
            i for i, m in enumerate(out) if i not in protected and not isinstance(m, SummaryMessage)
        ]
        if current > target and droppable:
            sizes = estimate_sizes(out, ctx, current)
            need = (current - target) * 1.05  # a margin: each exact recount costs a render
            count = 0
            freed = 0.0
            while count < len(droppable) and freed < need:
                freed += sizes[droppable[count]]
                count += 1
            # Estimates may fall short: confirm exactly, drop more while still over.
            while True:
                gone = droppable[:count]
                trial = self._drop_folding_facts(out, set(gone))
                current = ctx.count_tokens(trial)
                if current <= target or count >= len(droppable):
                    break
                count += 1
            dropped += [DroppedItem(id=out[i].id, description=describe(out[i])) for i in gone]
            out = trial
        if not dropped:
            return None
        return out, self._event(tokens, current, dropped)

    def _drop_folding_facts(self, history: Sequence[Message], gone: set[int]) -> list[Message]:
        """``history`` without the messages at ``gone``; their facts merged into the first
        unpinned summary (created right after the task when there is none)."""
        lost = [history[i] for i in sorted(gone)]
        out = [m for i, m in enumerate(history) if i not in gone]
        if not any(isinstance(m, ModelTurn) for m in lost):
            return out
        at = next(
            (i for i, m in enumerate(out) if isinstance(m, SummaryMessage) and not m.pinned), None
        )
        if at is None:
            facts = compute_facts(lost, roles=self.tool_roles)
            summary = SummaryMessage(
                content=facts_summary(facts), replaces=tuple(m.id for m in lost), facts=facts
            )
            out.insert(task_index(out) + 1, summary)
        else:
            old = out[at]
            assert isinstance(old, SummaryMessage)
            facts = compute_facts(lost, old.facts, roles=self.tool_roles)
            out[at] = old.model_copy(
                update={
                    "content": facts_summary(facts),
                    "facts": facts,
                    "replaces": old.replaces + tuple(m.id for m in lost),
                }
            )
        return out
