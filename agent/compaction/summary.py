"""Tier 3: the model summarizes the oldest steps; the computed facts (`facts.py`) go in
verbatim, so the summary states exactly what the tool calls did."""

from __future__ import annotations

from typing import Any

from ...errors import AgentError, ConfigError
from ..events import DroppedItem, HistoryCompacted
from ..messages import Message, SummaryMessage
from .contract import DEFAULT_TRIGGER, CompactionContext
from .facts import DEFAULT_TOOL_ROLES, ToolRoles, compute_facts, render_facts
from .history import describe, estimate_sizes, one_line, protected_indices, task_index
from .tiers import Tier

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
    Without ``ctx.summarize`` (or if the call fails) the summary holds the computed facts only.
    ``tool_roles``: which tools read and change files, run commands, update the plan (`facts`)."""

    name = "summarize_old_turns"

    def __init__(
        self,
        *,
        keep_fraction: float = 0.15,
        min_keep: int = 1,
        summary_fraction: float = 0.1,
        max_summary_tokens: int = 1_000,
        tool_roles: ToolRoles = DEFAULT_TOOL_ROLES,
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
        self.tool_roles = tool_roles

    async def apply(
        self, history: list[Message], ctx: CompactionContext, tokens: int, target: int
    ) -> tuple[list[Message], HistoryCompacted] | None:
        task = task_index(history)
        start = task + 1
        protected = protected_indices(history)
        sizes = estimate_sizes(history, ctx, tokens)
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
        facts = compute_facts((history[i] for i in replaced), previous, roles=self.tool_roles)
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
            DroppedItem(id=history[i].id, description=describe(history[i])) for i in replaced
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
            return "", f"(The model's summary is missing: {one_line(str(e), 160)})"
        answer = (answer or "").strip()
        cap = summary_tokens * 6  # chars; a runaway answer must not defeat the compaction
        if len(answer) > cap:
            answer = answer[:cap].rstrip() + "\n[summary cut at its size limit]"
        return answer, ""
