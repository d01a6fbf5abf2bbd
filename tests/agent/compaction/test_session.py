"""A 300-step synthetic coding session under the default chain: every request fits the budget,
pinned and computed facts survive every compaction, calls never lose their results, the
task + system prefix never changes, and undo gives back the full history."""

from __future__ import annotations

import random
import re

import pytest
from gemma_agent.agent.compaction import (
    AutoCompaction,
    CompactionContext,
    CompactionLedger,
    render_facts,
)
from gemma_agent.agent.messages import Message, ModelTurn, SummaryMessage, UserMessage
from gemma_agent.errors import ConfigError

from .synthetic import FakeSummarizer, Truth, approx_tokens, make_step, visible_tool_counts

LIMIT = 24_000  # tokens; steps add ~1,800 tokens each (big file reads, test logs)


def exit_code(content: object) -> int:
    if isinstance(content, dict):
        return content["exit_code"]
    assert isinstance(content, str)
    m = re.search(r"exit (-?\d+)", content)  # a cleared result keeps its exit code
    assert m is not None, content
    return int(m.group(1))


def check_invariants(
    history: list[Message], truth: Truth, task: UserMessage, pins: list[Message]
) -> None:
    assert history[0] is task
    for pin in pins:
        assert pin in history
    turns = [m for m in history if isinstance(m, ModelTurn)]
    for t in turns:
        assert [r.call_id for r in t.tool_results] == [c.id for c in t.tool_calls]
    summaries = [m for m in history if isinstance(m, SummaryMessage)]
    assert len(summaries) <= 1
    for s in summaries:
        assert render_facts(s.facts) in s.content  # inserted verbatim
    # Tool usage is exact: visible calls + calls counted in the summary's facts.
    assert visible_tool_counts(history) == truth.tool_calls
    facts = summaries[0].facts if summaries else {}
    visible_writes = {
        c.arguments["path"] for t in turns for c in t.tool_calls if c.name == "write_file"
    }
    assert truth.files_changed <= visible_writes | set(facts.get("files_changed", []))
    # The last test run: visible as is, or in the facts.
    tests = [
        (c.arguments["command"], exit_code(r.content) == 0)
        for t in turns
        for c, r in zip(t.tool_calls, t.tool_results, strict=True)
        if c.name == "run_shell"
    ]
    if truth.last_test is not None:
        if tests:
            assert tests[-1] == truth.last_test
        else:
            lt = facts["last_test"]
            assert (lt["command"], lt["ok"]) == truth.last_test
    plans = [c.arguments["items"] for t in turns for c in t.tool_calls if c.name == "update_plan"]
    if truth.plan is not None:
        if plans:
            assert [[i["text"], i["status"]] for i in plans[-1]] == truth.plan
        else:
            assert facts["plan"] == truth.plan


@pytest.mark.parametrize("seed", [1, 2])
async def test_300_steps_stay_in_budget_and_keep_facts(seed, spill):
    rng = random.Random(seed)
    truth = Truth()
    task = UserMessage(id="task", content="Make the test suite pass without changing the API.")
    history: list[Message] = [task]
    pins: list[Message] = []
    compactor = AutoCompaction(max_output_chars=8_000, keep_turns=4, min_clear_tokens=1_500)
    ledger = CompactionLedger()
    summarizer = FakeSummarizer()
    events = []
    originals: list[Message] = [task]
    added_tokens = 0
    for step in range(1, 301):
        size = approx_tokens(history)
        history.append(make_step(rng, step, truth))
        originals.append(history[-1])
        if step == 7:
            pin = UserMessage(
                content="FACT: staging port is 8417; never edit setup.cfg", pinned=True
            )
            history.append(pin)
            pins.append(pin)
            originals.append(pin)
        if step == 50:
            pinned_turn = make_step(rng, 10_001, truth).model_copy(update={"pinned": True})
            history.append(pinned_turn)
            pins.append(pinned_turn)
            originals.append(pinned_turn)
        ctx = CompactionContext(
            count_tokens=approx_tokens, limit_tokens=LIMIT, summarize=summarizer, spill=spill
        )
        before = list(history)
        added_tokens += approx_tokens(history) - size
        compaction = await compactor.compact(history, ctx)
        if compaction is not None:
            ledger.record(before, compaction)
            ev = compaction.event
            assert ev.tokens_before == approx_tokens(before)
            assert ev.tokens_after == approx_tokens(compaction.history)
            assert ev.compaction_id and ev.dropped
            history = compaction.history
            events.append(ev)
        # What the next request would carry.
        assert approx_tokens(history) <= LIMIT, f"step {step}: over budget"
        check_invariants(history, truth, task, pins)

    tiers = [e.tier for e in events]
    # Cheap tiers do most of the work; summaries happen.
    assert any("clip_tool_outputs" in t for t in tiers)
    assert any("clear_tool_results" in t for t in tiers)
    assert any("summarize_old_turns" in t for t in tiers)
    assert summarizer.instructions
    # Compactions that change old context (and so break the cached prefix) start only at the
    # trigger and always get down to the target: they come in rare batches, not every step.
    breaking = [e for e in events if e.tier != "clip_tool_outputs"]
    for e in breaking:
        assert e.tokens_before >= 0.75 * LIMIT
        assert e.tokens_after <= 0.5 * LIMIT
    assert len(breaking) <= added_tokens / (0.25 * LIMIT) + 1

    # Undo everything, newest first: the full uncompacted history comes back, in order.
    restored = history
    while ledger.entries:
        restored = ledger.undo(restored)
    assert restored == originals
    with pytest.raises(ConfigError, match="Nothing to undo"):
        ledger.undo(restored)
