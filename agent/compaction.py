"""History compaction: `Compactor`s turn a long history into a shorter one.

Contract shared by the loop and the compactors (the tiers are implemented below this block).
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

How the loop uses it (and undo)::

    ledger = CompactionLedger()
    ctx = CompactionContext(count_tokens=..., limit_tokens=..., summarize=..., spill=spill_store)
    compaction = await compactor.compact(history, ctx)
    if compaction is not None:
        ledger.record(history, compaction)      # keeps the pre-compaction history
        history = compaction.history
        emit(compaction.event)
    ...
    history = ledger.undo(history)              # agent.undo_compaction(): newest first
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import AgentError, ConfigError
from .events import DroppedItem, HistoryCompacted
from .messages import Message, ModelTurn, SummaryMessage, ToolCall, ToolResult, UserMessage, new_id

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


# --------------------------------------------------------------------------------------------
# Ledger (undo)


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


# --------------------------------------------------------------------------------------------
# Helpers shared by the tiers

_PATH_KEYS = ("path", "file_path", "filepath", "file", "filename", "target", "source", "dest")
_ARG_KEYS = (*_PATH_KEYS, "command", "cmd", "pattern", "query", "url", "name", "id")
_WRITE_TOOLS = frozenset(
    {"write_file", "edit_file", "apply_patch", "create_file", "delete_file", "move_file"}
)
_READ_TOOLS = frozenset({"read_file", "view_file", "open_file", "cat", "list_dir", "glob", "grep"})
_SHELL_TOOLS = frozenset({"run_shell", "shell", "bash", "exec", "run_command", "terminal"})
_PLAN_TOOLS = frozenset({"update_plan", "plan", "todo_write", "set_plan"})
_TEST_COMMAND = re.compile(
    r"\b(pytest|py\.test|unittest|nose2|tox|nox|(npm|yarn|pnpm)( run)? test|go test|cargo test|"
    r"make (test|check)|mvn test|gradle test|jest|vitest|ctest|rspec)\b"
)
_TEST_LINE = re.compile(r"\b(passed|failed|errors?|FAILED|PASSED|OK|FAIL|ok)\b")
_PATCH_PATH = re.compile(r"^(?:\+\+\+ b/|\*\*\* (?:Update|Add|Delete) File: )(\S+)", re.M)
_STUB = re.compile(r"^\[[^\n]{0,400}, cleared(?:; recall with recall_output\([^\n]*\))?\]$")
_CLIP_MARK = "chars clipped"
_CLIPPED = re.compile(r"\[\.\.\. \d+ lines, \d+ chars clipped")


def _one_line(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arg_summary(call: ToolCall | None) -> str:
    """The argument that says what a call was about: a path, a command, a pattern."""
    if call is None or not call.arguments:
        return ""
    args = call.arguments
    for key in _ARG_KEYS:
        value = args.get(key)
        if isinstance(value, str) and value:
            return _one_line(value, 60)
    for value in args.values():
        if isinstance(value, str) and value:
            return _one_line(value, 60)
    return ""


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=1, default=str)


def _size_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str))


def _is_stub(result: ToolResult) -> bool:
    return isinstance(result.content, str) and _STUB.match(result.content) is not None


def _calls_by_id(turn: ModelTurn) -> dict[str, ToolCall]:
    return {c.id: c for c in turn.tool_calls}


def _describe(message: Message) -> str:
    """One line for people: what a message was."""
    if isinstance(message, UserMessage):
        return "user: " + _one_line(message.content)
    if isinstance(message, SummaryMessage):
        return f"summary of {len(message.replaces)} messages"
    calls = _calls_by_id(message)
    parts = []
    for r in message.tool_results:
        arg = _arg_summary(calls.get(r.call_id))
        parts.append(f"{r.name}({arg})" + (" error" if r.is_error else ""))
    if not parts and message.tool_calls:
        parts = [f"{c.name}({_arg_summary(c)})" for c in message.tool_calls]
    if message.text:
        parts.append(repr(_one_line(message.text, 40)))
    return _one_line("model: " + (", ".join(parts) or "(empty)"), 120)


def _protected_indices(history: Sequence[Message]) -> set[int]:
    """Never compacted away: the task (first user message), the latest user message, pinned
    messages and the latest message."""
    keep = {i for i, m in enumerate(history) if m.pinned}
    users = [i for i, m in enumerate(history) if isinstance(m, UserMessage)]
    if users:
        keep.add(users[0])
        keep.add(users[-1])
    if history:
        keep.add(len(history) - 1)
    return keep


def _task_index(history: Sequence[Message]) -> int:
    """Index of the task (first user message); -1 when there is none."""
    for i, m in enumerate(history):
        if isinstance(m, UserMessage):
            return i
    return -1


def _content_shape(content: Any) -> str:
    text = content if isinstance(content, str) else None
    if isinstance(content, dict):
        # Tools like run_shell return {"stdout": ..., "exit_code": ...}: count the main text.
        texts = [v for v in content.values() if isinstance(v, str)]
        text = max(texts, key=len) if texts else None
    if text is not None:
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        return f"{lines} lines" if lines > 1 else f"{len(text)} chars"
    return f"{_size_chars(content)} chars"


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
# Tier 1: clip oversize tool outputs


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
        # Results already checked (by object identity; messages are frozen): a step costs
        # only its new results.
        self._seen: dict[int, ModelTurn] = {}

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        # Default: about a tenth of the context (0.4 chars per token of limit), at most 12k.
        max_chars = self.max_chars or min(12_000, max(400, int(0.4 * ctx.limit_tokens)))
        dropped: list[DroppedItem] = []
        out = list(history)
        seen: dict[int, ModelTurn] = {}
        for i, message in enumerate(history):
            if not isinstance(message, ModelTurn) or message.pinned:
                continue
            if id(message) in self._seen and self._seen[id(message)] is message:
                seen[id(message)] = message
                continue
            calls = _calls_by_id(message)
            results = []
            changed = False
            for r in message.tool_results:
                if _size_chars(r.content) <= max_chars or _CLIPPED.search(_result_text(r.content)):
                    results.append(r)
                    continue
                clipped, item = self._clip(r, calls.get(r.call_id), ctx.spill, max_chars)
                results.append(clipped)
                dropped.append(item)
                changed = True
            if changed:
                message = message.model_copy(update={"tool_results": tuple(results)})
                out[i] = message
            seen[id(message)] = message
        self._seen = seen
        if not dropped:
            return None
        after = ctx.count_tokens(out)
        return out, self._event(tokens, after, dropped)

    def _clip(
        self, result: ToolResult, call: ToolCall | None, spill: SpillSink | None, max_chars: int
    ) -> tuple[ToolResult, DroppedItem]:
        full = _result_text(result.content)
        spill_id = result.spill_id
        label = f"{result.name} {_arg_summary(call)}".strip()
        if spill_id is None and spill is not None:
            spill_id = spill.put(full, label=label)
        content = self._clip_value(result.content, max_chars, spill_id)
        if _size_chars(content) > max_chars * 1.2:
            # Many medium leaves (or numbers): clip the JSON text as a whole.
            content = self._clip_text(full, max_chars, spill_id)
        where = f"; full output in spill {spill_id}" if spill_id else ""
        item = DroppedItem(
            id=result.call_id,
            description=f"clipped {label}: {len(full)} -> {_size_chars(content)} chars{where}",
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
        other = _size_chars(value) - sum(leaves)
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
    sizes = [_size_chars(r.content) for r in last.tool_results]
    if room <= 0 or not any(sizes):
        return None
    clipper = ClipToolOutputs()
    calls = _calls_by_id(last)
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
            sizes = _estimate_sizes(history, ctx, tokens)
            freed = sum(
                sizes[i] * (1 - _proxy(preview[i]) / max(1, _proxy(history[i]))) for i in old
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
            calls = _calls_by_id(turn)
            results = []
            changed = False
            for r in turn.tool_results:
                stub = None if _is_stub(r) else self._stub(r, calls.get(r.call_id), spill)
                if stub is None or _size_chars(stub.content) >= _size_chars(r.content):
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
        arg = _arg_summary(call)
        label = f"{result.name} {arg}".strip()
        if spill_id is None and spill is not None:
            spill_id = spill.put(_result_text(result.content), label=label)
        what = "error, " if result.is_error else ""
        command = call.arguments.get("command") if call is not None else None
        if isinstance(result.content, dict) or isinstance(command, str):
            # Keep the outcome of commands (exit code, test verdict) visible: it is a fact.
            outcome = _test_outcome(command if isinstance(command, str) else "", result)
            if outcome["exit_code"] is not None:
                what += f"exit {outcome['exit_code']}, "
            if isinstance(command, str) and _TEST_COMMAND.search(command) and outcome["line"]:
                what += f"{json.dumps(outcome['line'], ensure_ascii=False)}, "
        media = f", {len(result.attachments)} attachments" if result.attachments else ""
        recall = f'; recall with recall_output("{spill_id}")' if spill_id else ""
        text = f"[{label}: {what}{_content_shape(result.content)}{media}, cleared{recall}]"
        return result.model_copy(update={"content": text, "spill_id": spill_id, "attachments": ()})


# --------------------------------------------------------------------------------------------
# Tier 3: summarize old turns

_FACTS_MAX_FILES = 40
_FACTS_MAX_ERRORS = 8


def compute_facts(
    messages: Iterable[Message], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Facts read off the history without the model: files read/changed, tools used (calls,
    errors), plan state, last test run, errors seen, steps. Merged onto ``previous`` (the facts
    of an earlier summary), so they survive every compaction."""
    prev = previous or {}
    read: list[str] = list(prev.get("files_read", []))
    changed: list[str] = list(prev.get("files_changed", []))
    tools: dict[str, list[int]] = {k: list(v) for k, v in prev.get("tools", {}).items()}
    plan: list[list[str]] | None = prev.get("plan")
    last_test: dict[str, Any] | None = prev.get("last_test")
    errors: list[str] = list(prev.get("errors", []))
    steps = int(prev.get("steps", 0))

    def add(lst: list[str], path: str) -> None:
        if path in lst:
            lst.remove(path)  # most recent last
        lst.append(path)

    for message in messages:
        if isinstance(message, SummaryMessage):
            continue  # its facts come in through `previous`
        if not isinstance(message, ModelTurn):
            continue
        steps += 1
        results = {r.call_id: r for r in message.tool_results}
        for call in message.tool_calls:
            result = results.get(call.id)
            failed = result is not None and result.is_error
            counts = tools.setdefault(call.name, [0, 0])
            counts[0] += 1
            counts[1] += int(failed)
            paths = _call_paths(call)
            if call.name in _WRITE_TOOLS or (
                call.name not in _READ_TOOLS
                and re.search(r"write|edit|patch|create|delete|move|rename", call.name)
            ):
                if not failed:
                    for p in paths:
                        add(changed, p)
            elif call.name in _READ_TOOLS or "read" in call.name:
                for p in paths:
                    add(read, p)
            if call.name in _PLAN_TOOLS:
                plan = _plan_items(call.arguments) or plan
            command = call.arguments.get("command") or call.arguments.get("cmd")
            if (
                isinstance(command, str)
                and (call.name in _SHELL_TOOLS or "shell" in call.name)
                and _TEST_COMMAND.search(command)
                and result is not None
            ):
                last_test = _test_outcome(command, result)
            if failed and result is not None and not _is_stub(result):
                first = _result_text(result.content).strip().splitlines() or [""]
                errors.append(_one_line(f"{call.name}({_arg_summary(call)}): {first[0]}", 160))
    return {
        "steps": steps,
        "files_read": read[-_FACTS_MAX_FILES:],
        "files_changed": changed[-_FACTS_MAX_FILES:],
        "tools": tools,
        "plan": plan,
        "last_test": last_test,
        "errors": errors[-_FACTS_MAX_ERRORS:],
    }


def _call_paths(call: ToolCall) -> list[str]:
    paths: list[str] = []
    for key in _PATH_KEYS:
        value = call.arguments.get(key)
        if isinstance(value, str) and value:
            paths.append(value)
    value = call.arguments.get("paths")
    if isinstance(value, list):
        paths.extend(v for v in value if isinstance(v, str))
    for key in ("patch", "diff", "input"):
        text = call.arguments.get(key)
        if isinstance(text, str):
            paths.extend(_PATCH_PATH.findall(text))
    return [_one_line(p, 200) for p in paths]


def _plan_items(arguments: dict[str, Any]) -> list[list[str]] | None:
    for key in ("items", "plan", "steps", "todos"):
        items = arguments.get(key)
        if isinstance(items, list):
            break
    else:
        return None
    out: list[list[str]] = []
    for item in items:
        if isinstance(item, str):
            out.append([_one_line(item, 120), "pending"])
        elif isinstance(item, dict):
            text = next(
                (item[k] for k in ("text", "step", "content", "title", "description") if k in item),
                "",
            )
            out.append([_one_line(str(text), 120), str(item.get("status", "pending"))])
        elif isinstance(item, list | tuple) and item:
            out.append([_one_line(str(item[0]), 120), str(item[1]) if len(item) > 1 else "pending"])
    return out


def _test_outcome(command: str, result: ToolResult) -> dict[str, Any]:
    content = result.content
    code: Any = None
    if isinstance(content, dict):
        for key in ("exit_code", "returncode", "exit_status", "status", "code"):
            if isinstance(content.get(key), int):
                code = content[key]
                break
    if isinstance(content, dict):
        text = "\n".join(v for k, v in content.items() if isinstance(v, str))
    else:
        text = _result_text(content)
    if code is None:
        m = re.search(r"exit(?:ed with)?(?: code|_code| status)?[:= ]+(-?\d+)", text, re.I)
        if m:
            code = int(m.group(1))
    line = ""
    for candidate in reversed(text.splitlines()):
        if _TEST_LINE.search(candidate):
            line = _one_line(candidate.strip(" =\\n"), 160)
            break
    ok = (code == 0) if code is not None else (not result.is_error)
    return {"command": _one_line(command, 120), "exit_code": code, "ok": ok, "line": line}


def render_facts(facts: dict[str, Any]) -> str:
    """The facts block inserted verbatim into a summary."""

    def files(paths: list[str]) -> str:
        return ", ".join(paths) if paths else "none"

    lines = ["Computed facts (exact, from the tool calls):"]
    lines.append(f"- Steps compacted so far: {facts.get('steps', 0)}")
    lines.append(f"- Files read: {files(facts.get('files_read', []))}")
    lines.append(f"- Files changed: {files(facts.get('files_changed', []))}")
    tools = facts.get("tools") or {}
    used = ", ".join(
        f"{name} x{n}" + (f" ({e} failed)" if e else "") for name, (n, e) in sorted(tools.items())
    )
    lines.append(f"- Tools used: {used or 'none'}")
    plan = facts.get("plan")
    if plan:
        lines.append("- Plan: " + "; ".join(f"[{status}] {text}" for text, status in plan))
    test = facts.get("last_test")
    if test:
        verdict = "passed" if test.get("ok") else "FAILED"
        code = test.get("exit_code")
        detail = f" (exit {code})" if code is not None else ""
        extra = f": {test['line']}" if test.get("line") else ""
        lines.append(f"- Last test run: `{test.get('command')}` {verdict}{detail}{extra}")
    errors = facts.get("errors") or []
    if errors:
        lines.append("- Errors seen: " + " | ".join(errors))
    return "\n".join(lines)


SUMMARY_INSTRUCTION = """\
Context is running out: summarize the work so far for yourself; the summary will replace the \
older messages (the last {kept} stay). Use these headings:
Task:
Plan state:
Files read / changed:
Decisions:
Errors seen:
Open questions / next steps:
Be specific (paths, names, values, commands); at most {words} words; no tool calls.{focus}"""


class SummarizeOldTurns(Tier):
    """The oldest messages are replaced by a summary written by the model, placed right after
    the task. Computed facts are inserted verbatim. Pinned messages and the latest user message
    stay (moved just before the summary); the newest ``keep_fraction`` of the limit stays as is.
    Without ``ctx.summarize`` (or if the call fails) the summary holds the computed facts only."""

    name = "summarize_old_turns"

    def __init__(
        self,
        *,
        keep_fraction: float = 0.15,
        min_keep: int = 1,
        summary_fraction: float = 0.1,
        max_summary_tokens: int = 1_000,
        trigger: float = DEFAULT_TRIGGER,
        target: float = 0.5,
    ) -> None:
        super().__init__(trigger=trigger, target=target)
        if not 0 < keep_fraction < 1 or not 0 < summary_fraction < 1 or min_keep < 1:
            raise ConfigError(
                "SummarizeOldTurns: keep_fraction and summary_fraction must be in (0, 1), "
                "min_keep >= 1."
            )
        self.keep_fraction = keep_fraction
        self.min_keep = min_keep
        self.summary_fraction = summary_fraction
        self.max_summary_tokens = max_summary_tokens

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        task = _task_index(history)
        start = task + 1
        protected = _protected_indices(history)
        sizes = _estimate_sizes(history, ctx, tokens)
        # Relative to the history too, so that a manual compaction of a short one still works.
        keep_budget = self.keep_fraction * min(ctx.limit_tokens, tokens)
        # Walk back from the end: keep the newest messages that fit the keep budget.
        split = len(history)
        kept_tokens = 0.0
        while split > start:
            size = sizes[split - 1]
            if len(history) - split >= self.min_keep and kept_tokens + size > keep_budget:
                break
            kept_tokens += size
            split -= 1
        old = range(start, split)
        replaced = [i for i in old if i not in protected]
        if not any(not isinstance(history[i], SummaryMessage) for i in replaced):
            return None  # nothing new to summarize
        summary_tokens = int(min(self.max_summary_tokens, self.summary_fraction * ctx.limit_tokens))
        if not ctx.manual and sum(sizes[i] for i in replaced) < 2 * summary_tokens:
            return None  # a summary would not be much shorter than what it replaces
        previous: dict[str, Any] = {}
        for i in replaced:
            m = history[i]
            if isinstance(m, SummaryMessage) and m.facts:
                previous = m.facts
        facts = compute_facts((history[i] for i in replaced), previous)
        prose, note = await self._ask_model(ctx, len(history) - split, summary_tokens)
        content = f"[Summary of earlier work ({len(replaced)} messages compacted)]\n"
        content += render_facts(facts)
        if prose:
            content += "\n\n" + prose
        if note:
            content += "\n\n" + note
        summary = SummaryMessage(
            content=content,
            replaces=tuple(history[i].id for i in replaced),
            facts=facts,
        )
        moved = [history[i] for i in old if i in protected]
        out = [*history[:start], *moved, summary, *history[split:]]
        after = ctx.count_tokens(out)
        dropped = [
            DroppedItem(id=history[i].id, description=_describe(history[i])) for i in replaced
        ]
        return out, self._event(tokens, after, dropped, summary=content)

    async def _ask_model(
        self, ctx: CompactionContext, kept: int, summary_tokens: int
    ) -> tuple[str, str]:
        """The model's summary text and a note (why there is none), the text capped."""
        if ctx.summarize is None:
            return "", ""
        focus = f"\nFocus on: {ctx.focus.strip()}" if ctx.focus and ctx.focus.strip() else ""
        words = max(60, int(summary_tokens * 0.7))
        instruction = SUMMARY_INSTRUCTION.format(kept=kept, words=words, focus=focus)
        try:
            answer = await ctx.summarize(instruction)
        except AgentError as e:
            # The facts alone still make a usable summary; the run goes on.
            return "", f"(The model's summary is missing: {_one_line(str(e), 160)})"
        answer = (answer or "").strip()
        cap = summary_tokens * 6  # chars; a runaway answer must not defeat the compaction
        if len(answer) > cap:
            answer = answer[:cap].rstrip() + "\n[summary cut at its size limit]"
        return answer, ""


def _proxy(message: Message) -> int:
    """Cheap size of a message in characters (only ratios matter; calibrated per call)."""
    if isinstance(message, UserMessage | SummaryMessage):
        return len(message.content) + 16
    n = len(message.text) + len(message.reasoning or "") + 16
    for c in message.tool_calls:
        n += len(c.name) + _size_chars(c.arguments) + 8
    for r in message.tool_results:
        n += len(r.name) + _size_chars(r.content) + 8
    return n


def _estimate_sizes(history: Sequence[Message], ctx: CompactionContext, tokens: int) -> list[float]:
    """Tokens per message, estimated from character counts scaled so they sum to ``tokens``
    (one exact count per compaction instead of one per message)."""
    proxies = [_proxy(m) for m in history]
    total = sum(proxies) or 1
    scale = tokens / total
    return [p * scale for p in proxies]


# --------------------------------------------------------------------------------------------
# Tier 4: drop oldest


class DropOldest(Tier):
    """Last resort: shrink summaries to their computed facts, then drop the oldest messages
    until under target. Never the task, the latest user message, pinned messages or the
    latest message. The facts of dropped steps are folded into the summary (one is created
    right after the task when there is none), so computed facts survive this tier too."""

    name = "drop_oldest"

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        out = list(history)
        dropped: list[DroppedItem] = []
        for i, m in enumerate(out):
            if isinstance(m, SummaryMessage) and not m.pinned and m.facts:
                facts_only = _facts_summary(m.facts)
                if len(facts_only) < len(m.content):
                    out[i] = m.model_copy(update={"content": facts_only})
                    dropped.append(DroppedItem(id=m.id, description="summary prose dropped"))
        current = ctx.count_tokens(out) if dropped else tokens
        protected = _protected_indices(out)
        droppable = [
            i for i, m in enumerate(out) if i not in protected and not isinstance(m, SummaryMessage)
        ]
        if current > target and droppable:
            sizes = _estimate_sizes(out, ctx, current)
            need = (current - target) * 1.05  # a margin: each exact recount costs a render
            count = 0
            freed = 0.0
            while count < len(droppable) and freed < need:
                freed += sizes[droppable[count]]
                count += 1
            # Estimates may fall short: confirm exactly, drop more while still over.
            while True:
                gone = droppable[:count]
                trial = _drop_folding_facts(out, set(gone))
                current = ctx.count_tokens(trial)
                if current <= target or count >= len(droppable):
                    break
                count += 1
            dropped += [DroppedItem(id=out[i].id, description=_describe(out[i])) for i in gone]
            out = trial
        if not dropped:
            return None
        return out, self._event(tokens, current, dropped)


def _facts_summary(facts: dict[str, Any]) -> str:
    return f"[Summary of earlier work, shortened]\n{render_facts(facts)}"


def _drop_folding_facts(history: Sequence[Message], gone: set[int]) -> list[Message]:
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
        facts = compute_facts(lost)
        summary = SummaryMessage(
            content=_facts_summary(facts), replaces=tuple(m.id for m in lost), facts=facts
        )
        out.insert(_task_index(out) + 1, summary)
    else:
        old = out[at]
        assert isinstance(old, SummaryMessage)
        facts = compute_facts(lost, old.facts)
        out[at] = old.model_copy(
            update={
                "content": _facts_summary(facts),
                "facts": facts,
                "replaces": old.replaces + tuple(m.id for m in lost),
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Chains


@dataclass(slots=True)
class _Growth:
    first: Message  # kept so that its id is not reused while tracked
    last: int = 0
    growth: deque[int] = field(default_factory=lambda: deque(maxlen=8))


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
        # Per conversation (an Agent's sessions share its compactor), keyed by the identity of
        # its first message (the task, never compacted away): the size at the end of the last
        # call and the recent step growths.
        self._steps: dict[int, _Growth] = {}

    def threshold(self, limit: int, history: Sequence[Message]) -> float:
        """Tokens at which the compaction of ``history`` starts, given its recent steps."""
        track = self._steps.get(id(history[0])) if history else None
        grown = max(track.growth, default=0) if track is not None else 0
        return max(self.min_trigger * limit, min(self.trigger * limit, limit - 2 * grown))

    def _track(self, history: Sequence[Message], tokens: int) -> _Growth | None:
        if not history:
            return None
        key = id(history[0])
        track = self._steps.get(key)
        if track is None or track.first is not history[0]:
            if len(self._steps) >= 64:  # forget the oldest conversation
                del self._steps[next(iter(self._steps))]
            track = self._steps[key] = _Growth(history[0])
        elif tokens > track.last:
            track.growth.append(tokens - track.last)
        track.last = tokens
        return track

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        if not self.enabled and not ctx.manual:
            return None
        tokens = ctx.tokens if ctx.tokens is not None else ctx.count_tokens(history)
        track = self._track(history, tokens)
        first = tokens
        limit = ctx.limit_tokens
        target = int(self.target * limit)
        start_at = self.threshold(limit, history)
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
            result = await tier.apply(current, ctx, tokens, target)
            if result is None:
                continue
            current, event = result
            tokens = event.tokens_after
            parts.append(event)
            summarized = summarized or isinstance(tier, SummarizeOldTurns)
            if not triggered and tokens >= start_at:
                triggered = True  # clipping alone was not enough: go on with the rest
        if track is not None:
            track.last = tokens
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
    ``Agent(compactor=None)`` turns compaction off entirely.
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
    ) -> None:
        tiers: list[Tier] = [
            ClipToolOutputs(max_chars=max_output_chars),
            ClearOldToolResults(keep_turns=keep_turns, min_tokens=min_clear_tokens),
            SummarizeOldTurns(keep_fraction=keep_fraction),
            DropOldest(),
        ]
        super().__init__(
            tiers, trigger=trigger, target=target, enabled=enabled, min_trigger=min_trigger
        )


def default_compactor() -> AutoCompaction:
    return AutoCompaction()


__all__ = [
    "AutoCompaction",
    "ClearOldToolResults",
    "ClipToolOutputs",
    "Compaction",
    "CompactionChain",
    "CompactionContext",
    "CompactionLedger",
    "Compactor",
    "DropOldest",
    "LedgerEntry",
    "SpillSink",
    "SummarizeOldTurns",
    "Tier",
    "compute_facts",
    "default_compactor",
    "fit_fresh_results",
    "render_facts",
]
