"""Tier 1, clipping: tool results over a size keep their head and tail around a marker, the
full text spilled. Also the last resort for a tool round too big for the room left."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ...errors import ConfigError
from ..events import DroppedItem, HistoryCompacted
from ..messages import Message, ModelTurn, ToolCall, ToolResult
from .contract import Compaction, CompactionContext, CompactionState, ConversationStates, SpillSink
from .history import arg_summary, calls_by_id, result_text, size_chars
from .tiers import Tier

_CLIP_MARK = "chars clipped"
_CLIPPED = re.compile(r"\[\.\.\. \d+ lines, \d+ chars clipped")


class ClipToolOutputs(Tier):
    """Tool results over ``max_chars`` keep their head and tail around a marker; the full text
    goes to the spill store. Runs every step: only results not yet sent to the model are big,
    so clipping them never breaks the cached prefix. ``max_chars`` defaults to about a tenth
    of the context (0.4 characters per token of the limit), at most 12,000."""

    name = "clip_tool_outputs"
    every_step = True

    def __init__(self, *, max_chars: int | None = None, head_share: float = 0.6) -> None:
        super().__init__()
        if max_chars is not None and max_chars < 200:
            raise ConfigError(f"ClipToolOutputs: max_chars={max_chars} is too small (>= 200).")
        if not 0 < head_share < 1:
            raise ConfigError("ClipToolOutputs: head_share must be between 0 and 1.")
        self.max_chars = max_chars
        self.head_share = head_share
        # The turns already checked per conversation, when the caller gives no ctx.state.
        self._states = ConversationStates()

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        # Default: about a tenth of the context (0.4 chars per token of limit), at most 12k.
        max_chars = self.max_chars or min(12_000, max(400, int(0.4 * ctx.limit_tokens)))
        state = ctx.state or self._states.setdefault(history) or CompactionState()
        dropped: list[DroppedItem] = []
        out = list(history)
        # Turns already checked are skipped: a step costs only its new results.
        seen: dict[str, ModelTurn] = {}
        for i, message in enumerate(history):
            if not isinstance(message, ModelTurn) or message.pinned:
                continue
            if state.checked.get(message.id) is message:
                seen[message.id] = message
                continue
            calls = calls_by_id(message)
            results = []
            changed = False
            for r in message.tool_results:
                if size_chars(r.content) <= max_chars or _CLIPPED.search(result_text(r.content)):
                    results.append(r)
                    continue
                clipped, item = self._clip(r, calls.get(r.call_id), ctx.spill, max_chars)
                results.append(clipped)
                dropped.append(item)
                changed = True
            if changed:
                message = message.model_copy(update={"tool_results": tuple(results)})
                out[i] = message
            seen[message.id] = message
        state.checked = seen
        if not dropped:
            return None
        after = ctx.count_tokens(out)
        return out, self._event(tokens, after, dropped)

    def _clip(
        self, result: ToolResult, call: ToolCall | None, spill: SpillSink | None, max_chars: int
    ) -> tuple[ToolResult, DroppedItem]:
        full = result_text(result.content)
        spill_id = result.spill_id
        label = f"{result.name} {arg_summary(call)}".strip()
        if spill_id is None and spill is not None:
            spill_id = spill.put(full, label=label)
        content = self._clip_value(result.content, max_chars, spill_id)
        if size_chars(content) > max_chars * 1.2:
            # Many medium leaves (or numbers): clip the JSON text as a whole.
            content = self._clip_text(full, max_chars, spill_id)
        where = f"; full output in spill {spill_id}" if spill_id else ""
        item = DroppedItem(
            id=result.call_id,
            description=f"clipped {label}: {len(full)} -> {size_chars(content)} chars{where}",
        )
        return result.model_copy(update={"content": content, "spill_id": spill_id}), item

    def _clip_text(self, text: str, budget: int, spill_id: str | None) -> str:
        if len(text) <= budget:
            return text
        head = int(budget * self.head_share)
        tail = max(0, budget - head)
        cut = len(text) - head - tail
        lines = text.count("\n", head, len(text) - tail)
        recall = f'; recall_output("{spill_id}") shows all' if spill_id else ""
        marker = f"\n[... {lines} lines, {cut} {_CLIP_MARK}{recall} ...]\n"
        return text[:head] + marker + (text[-tail:] if tail else "")

    def _clip_value(self, value: Any, budget: int, spill_id: str | None) -> Any:
        if isinstance(value, str):
            return self._clip_text(value, budget, spill_id)
        leaves: list[int] = []
        _string_leaves(value, leaves)
        if not leaves:
            return value
        other = size_chars(value) - sum(leaves)
        cap = _water_level(leaves, max(200, budget - other))
        return _map_strings(value, lambda s: self._clip_text(s, cap, spill_id))


def fit_fresh_results(history: Sequence[Message], ctx: CompactionContext) -> Compaction | None:
    """Clip the latest tool round's results until the history fits ``ctx.limit_tokens``.

    The last resort when one round returned more than the room left (a big file on a small
    context): the results are the latest message, which no tier may drop, and the model has not
    seen them yet, so cutting them costs no cache. Each keeps its head and tail with a marker;
    the full text is in the spill store. None when the history fits, or when even empty results
    would not fit (then nothing here can help).
    """
    tokens = ctx.tokens if ctx.tokens is not None else ctx.count_tokens(history)
    last = history[-1] if history else None
    if tokens <= ctx.limit_tokens or not isinstance(last, ModelTurn) or not last.tool_results:
        return None
    empty = [r.model_copy(update={"content": ""}) for r in last.tool_results]
    base = ctx.count_tokens([*history[:-1], last.model_copy(update={"tool_results": empty})])
    room = ctx.limit_tokens - base
    sizes = [size_chars(r.content) for r in last.tool_results]
    if room <= 0 or not any(sizes):
        return None
    clipper = ClipToolOutputs()
    calls = calls_by_id(last)
    originals = list(last.tool_results)
    budget = int(room * sum(sizes) / max(1, tokens - base) * 0.9)  # chars the room holds
    for _ in range(4):  # the estimate of chars per token may be off: check and shrink
        cap = _water_level(sizes, max(budget, 100 * len(sizes)))
        results, dropped = [], []
        for i, (r, size) in enumerate(zip(originals, sizes, strict=True)):
            if size <= cap:
                results.append(r)
                continue
            clipped, item = clipper._clip(r, calls.get(r.call_id), ctx.spill, cap)
            originals[i] = r.model_copy(update={"spill_id": clipped.spill_id})  # spilled once
            results.append(clipped)
            dropped.append(item)
        out = [*history[:-1], last.model_copy(update={"tool_results": tuple(results)})]
        after = ctx.count_tokens(out)
        if after <= ctx.limit_tokens:
            event = replace(clipper._event(tokens, after, dropped), tier="fit_fresh_results")
            return Compaction(out, event, (event,))
        budget = int(budget * ctx.limit_tokens / after * 0.8)
    return None


def _string_leaves(value: Any, out: list[int]) -> None:
    if isinstance(value, str):
        out.append(len(value))
    elif isinstance(value, dict):
        for v in value.values():
            _string_leaves(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _string_leaves(v, out)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(v, fn) for v in value]
    return value


def _water_level(sizes: list[int], budget: int) -> int:
    """The largest cap c with sum(min(s, c)) <= budget (clips only the largest strings)."""
    remaining, count = budget, len(sizes)
    for s in sorted(sizes):
        if s * count > remaining:
            return max(100, remaining // count)
        remaining -= s
        count -= 1
    return max(sizes)
