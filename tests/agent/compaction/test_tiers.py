"""Each compaction tier on its own, with a chars/4 counter (exactness does not matter here)."""

from __future__ import annotations

import asyncio
import re

import pytest
from gemma_agent.agent.compaction import (
    AutoCompaction,
    ClearOldToolResults,
    ClipToolOutputs,
    CompactionChain,
    CompactionContext,
    CompactionState,
    DropOldest,
    SummarizeOldTurns,
    compute_facts,
    render_facts,
)
from gemma_agent.agent.messages import (
    Message,
    ModelTurn,
    SummaryMessage,
    ToolCall,
    ToolResult,
    UserMessage,
)
from gemma_agent.errors import ConfigError, EngineRequestFailed

from .synthetic import FakeSummarizer, approx_tokens


def turn(
    i: int, name: str, args: dict, content, *, pinned: bool = False, error: bool = False
) -> ModelTurn:
    call = ToolCall(id=f"c{i}", name=name, arguments=args)
    return ModelTurn(
        id=f"t{i}",
        tool_calls=(call,),
        tool_results=(ToolResult(call_id=call.id, name=name, content=content, is_error=error),),
        pinned=pinned,
    )


def lines(n: int, width: int = 40) -> str:
    return "\n".join(f"{k:05d} " + "x" * (width - 6) for k in range(n))


def ctx(limit: int, **kw) -> CompactionContext:
    return CompactionContext(count_tokens=approx_tokens, limit_tokens=limit, **kw)


TASK = UserMessage(id="task", content="Fix the failing test in src/app.py")


# ---- tier 1 -------------------------------------------------------------------------------


async def test_clip_keeps_head_and_tail_and_spills_the_full_text(spill):
    text = lines(1000)
    history: list[Message] = [TASK, turn(1, "read_file", {"path": "src/app.py"}, text)]
    result = await ClipToolOutputs(max_chars=4000).compact(history, ctx(10**6, spill=spill))
    assert result is not None
    r = result.history[1].tool_results[0]
    assert isinstance(r.content, str)
    assert len(r.content) < 4200
    assert r.content.startswith(text[:2000]) and r.content.endswith(text[-1000:])
    m = re.search(
        r'\[\.\.\. (\d+) lines, (\d+) chars clipped; recall_output\("(sp_\w+)"\)', r.content
    )
    assert m is not None
    assert r.spill_id == m.group(3)
    assert spill.get(r.spill_id) == text
    assert int(m.group(2)) == len(text) - 4000
    ev = result.event
    assert ev.tier == "clip_tool_outputs"
    assert ev.tokens_before > ev.tokens_after == approx_tokens(result.history)
    assert ev.dropped[0].id == "c1" and "spill sp_" in ev.dropped[0].description
    assert ev.compaction_id.startswith("c_")
    # Idempotent: a second pass finds nothing to clip.
    assert await ClipToolOutputs(max_chars=4000).compact(result.history, ctx(10**6)) is None


async def test_clip_runs_below_the_trigger_and_leaves_pinned_and_small_results():
    small = turn(1, "read_file", {"path": "a.py"}, "short")
    pinned = turn(2, "read_file", {"path": "b.py"}, lines(500), pinned=True)
    history: list[Message] = [TASK, small, pinned]
    assert await ClipToolOutputs(max_chars=1000).compact(history, ctx(10**9)) is None


async def test_clip_checks_each_turn_once_per_conversation_state():
    state = CompactionState()
    clip = ClipToolOutputs(max_chars=1000)
    small = turn(1, "read_file", {"path": "a.py"}, "short")
    history: list[Message] = [TASK, small]
    assert await clip.compact(history, ctx(10**9, state=state)) is None
    assert state.checked == {"t1": small}
    # The same id in a new object (a turn changed since) is checked again, and clipped.
    big = turn(1, "read_file", {"path": "a.py"}, lines(500))
    result = await clip.compact([TASK, big], ctx(10**9, state=state))
    assert result is not None and state.checked["t1"] is result.history[1]


async def test_clip_dict_result_clips_the_big_strings_only():
    content = {"exit_code": 1, "stdout": lines(2000), "stderr": "boom"}
    history: list[Message] = [TASK, turn(1, "run_shell", {"command": "pytest"}, content)]
    result = await ClipToolOutputs(max_chars=3000).compact(history, ctx(10**6))
    assert result is not None
    clipped = result.history[1].tool_results[0].content
    assert clipped["exit_code"] == 1 and clipped["stderr"] == "boom"
    assert "chars clipped" in clipped["stdout"] and len(clipped["stdout"]) < 3200
    # Without a spill store the marker says nothing about recall.
    assert "recall_output" not in clipped["stdout"]


# ---- tier 2 -------------------------------------------------------------------------------


async def test_clear_replaces_old_results_with_recallable_stubs(spill):
    history: list[Message] = [TASK] + [
        turn(i, "read_file", {"path": f"src/x{i}.py"}, lines(412)) for i in range(8)
    ]
    tier = ClearOldToolResults(keep_turns=3, min_tokens=1000)
    result = await tier.compact(history, ctx(approx_tokens(history), spill=spill))
    assert result is not None
    stubs = [m.tool_results[0] for m in result.history[1:6]]
    for i, r in enumerate(stubs):
        assert r.content == (
            f'[read_file src/x{i}.py: 412 lines, cleared; recall with recall_output("{r.spill_id}")]'
        )
        assert spill.get(r.spill_id) == lines(412)
    # The last 3 steps are untouched (the same objects), and the prefix before the first
    # cleared result is unchanged: one cache break.
    assert result.history[6:] == history[6:]
    assert all(a is b for a, b in zip(result.history[6:], history[6:], strict=True))
    assert result.history[0] is TASK
    assert [d.id for d in result.event.dropped] == [f"c{i}" for i in range(5)]
    assert result.event.dropped[0].description.startswith("read_file src/x0.py: 412 lines")
    # Already-cleared results are not cleared again.
    again = await ClearOldToolResults(keep_turns=3, min_tokens=0).compact(
        result.history, ctx(1, manual=True)
    )
    assert again is None


async def test_clear_waits_until_a_batch_frees_min_tokens(spill):
    history: list[Message] = [TASK] + [
        turn(i, "read_file", {"path": f"f{i}.py"}, lines(30)) for i in range(6)
    ]
    limit = approx_tokens(history)  # at the limit: triggered
    freed_one = 30 * 40 // 4  # about 300 tokens per result
    # 2 old results (~600 tokens) < 1000: nothing happens, the cache stays hot.
    tier = ClearOldToolResults(keep_turns=4, min_tokens=1000)
    assert await tier.compact(history, ctx(limit, spill=spill)) is None
    assert not spill.ids()  # nothing spilled for a batch that did not happen
    # Two more steps: 4 old results (~1200 tokens) >= 1000: all four cleared at once.
    history += [turn(i, "read_file", {"path": f"f{i}.py"}, lines(30)) for i in (6, 7)]
    result = await tier.compact(history, ctx(approx_tokens(history), spill=spill))
    assert result is not None
    assert len(result.event.dropped) == 4
    assert len(list(spill.root.glob("*.txt"))) == 4
    freed = result.event.tokens_before - result.event.tokens_after
    assert freed >= 1000 and freed > 3 * freed_one
    # Manual compaction ignores the batch minimum.
    small: list[Message] = [
        TASK,
        turn(1, "read_file", {"path": "a.py"}, lines(30)),
        turn(2, "ls", {}, "x"),
    ]
    manual = await ClearOldToolResults(keep_turns=1, min_tokens=10**6).compact(
        small, ctx(10**6, manual=True)
    )
    assert manual is not None and len(manual.event.dropped) == 1


async def test_clear_below_trigger_does_nothing_and_respects_pins():
    history: list[Message] = [TASK] + [
        turn(i, "read_file", {"path": f"f{i}.py"}, lines(100), pinned=(i == 0)) for i in range(6)
    ]
    tokens = approx_tokens(history)
    tier = ClearOldToolResults(keep_turns=2, min_tokens=0)
    assert await tier.compact(history, ctx(int(tokens / 0.7))) is None  # 70 % < 75 %
    result = await tier.compact(history, ctx(tokens))
    assert result is not None
    assert result.history[1] is history[1]  # pinned: untouched
    assert [d.id for d in result.event.dropped] == ["c1", "c2", "c3"]


# ---- tier 3 -------------------------------------------------------------------------------


def coding_history() -> list[Message]:
    return [
        TASK,
        turn(1, "read_file", {"path": "src/app.py"}, lines(200)),
        turn(
            2,
            "run_shell",
            {"command": "pytest -q"},
            {"exit_code": 1, "stdout": "F\n1 failed, 3 passed"},
        ),
        UserMessage(id="fact", content="FACT: the API port is 8417", pinned=True),
        turn(3, "edit_file", {"path": "src/app.py", "old": "a", "new": "b"}, "ok"),
        turn(
            4,
            "update_plan",
            {
                "items": [
                    {"text": "fix bug", "status": "done"},
                    {"text": "run tests", "status": "in_progress"},
                ]
            },
            "ok",
        ),
        turn(5, "read_file", {"path": "nope.py"}, "no such file: nope.py", error=True),
        turn(
            6,
            "run_shell",
            {"command": "pytest -q"},
            {"exit_code": 0, "stdout": "....\n4 passed in 0.1s"},
        ),
        turn(7, "read_file", {"path": "src/util.py"}, lines(200)),
        turn(8, "read_file", {"path": "src/more.py"}, lines(200)),
    ]


async def test_summarize_replaces_oldest_turns_after_the_task_with_facts_verbatim():
    history = coding_history()
    summarizer = FakeSummarizer()
    tokens = approx_tokens(history)
    tier = SummarizeOldTurns(keep_fraction=0.25)
    result = await tier.compact(history, ctx(tokens, summarize=summarizer))
    assert result is not None
    out = result.history
    # Task first, then the pinned fact (moved), then the summary, then the newest turns.
    assert out[0] is TASK
    assert out[1] is history[3]
    summary = out[2]
    assert isinstance(summary, SummaryMessage)
    assert out[-1] is history[-1]
    kept = out[3:]
    assert kept == history[len(history) - len(kept) :]
    assert set(summary.replaces) | {m.id for m in kept} | {"task", "fact"} == {
        m.id for m in history
    }
    facts = summary.facts
    replaced_turns = [m for m in history if m.id in summary.replaces]
    assert facts == compute_facts(replaced_turns)
    assert render_facts(facts) in summary.content
    assert "Task: fix the failing tests" in summary.content
    assert result.event.summary == summary.content
    assert [d.id for d in result.event.dropped] == list(summary.replaces)
    assert result.event.tokens_after == approx_tokens(out) < tokens
    # The facts themselves.
    assert facts["files_changed"] == ["src/app.py"]
    assert "src/app.py" in facts["files_read"]
    assert facts["plan"] == [["fix bug", "done"], ["run tests", "in_progress"]]
    assert facts["last_test"] == {
        "command": "pytest -q",
        "exit_code": 0,
        "ok": True,
        "line": "4 passed in 0.1s",
    }
    assert facts["tools"]["read_file"] == [2, 1] or facts["tools"]["read_file"][1] == 1
    assert any("nope.py" in e for e in facts["errors"])
    # The instruction asks for the structured summary, with thinking left to the loop.
    (instruction,) = summarizer.instructions
    for heading in (
        "Task:",
        "Plan state:",
        "Files read / changed",
        "Decisions",
        "Errors seen",
        "Open questions",
    ):
        assert heading in instruction


async def test_summaries_merge_facts_of_the_previous_summary():
    history = coding_history()
    tier = SummarizeOldTurns(keep_fraction=0.2)
    first = await tier.compact(history, ctx(approx_tokens(history)))
    assert first is not None
    more = [
        turn(10 + i, "write_file", {"path": f"new{i}.py", "content": "x"}, "ok") for i in range(3)
    ]
    more.append(turn(20, "read_file", {"path": "big.py"}, lines(300)))
    grown = first.history + more
    second = await tier.compact(grown, ctx(approx_tokens(grown)))
    assert second is not None
    summaries = [m for m in second.history if isinstance(m, SummaryMessage)]
    assert len(summaries) == 1
    facts = summaries[0].facts
    assert facts["files_changed"][:1] == ["src/app.py"]
    assert {"new0.py", "new1.py", "new2.py"} <= set(facts["files_changed"])
    assert facts["plan"] == [["fix bug", "done"], ["run tests", "in_progress"]]
    first_summary = next(m for m in first.history if isinstance(m, SummaryMessage))
    assert first_summary.id in summaries[0].replaces


async def test_summarize_failure_keeps_facts_and_says_why():
    async def broken(_: str) -> str:
        raise EngineRequestFailed("engine restarted")

    history = coding_history()
    result = await SummarizeOldTurns().compact(
        history, ctx(approx_tokens(history), summarize=broken)
    )
    assert result is not None
    summary = next(m for m in result.history if isinstance(m, SummaryMessage))
    assert "model's summary is missing: engine restarted" in summary.content
    assert render_facts(summary.facts) in summary.content


async def test_summarize_does_not_swallow_cancellation():
    async def cancelled(_: str) -> str:
        raise asyncio.CancelledError

    history = coding_history()
    with pytest.raises(asyncio.CancelledError):
        await SummarizeOldTurns().compact(history, ctx(approx_tokens(history), summarize=cancelled))


async def test_manual_compaction_summarizes_with_focus_even_when_small():
    history = coding_history()
    summarizer = FakeSummarizer()
    auto = AutoCompaction()
    big = ctx(10**6, summarize=summarizer)
    assert await auto.compact(history, big) is None  # far below the trigger
    manual = ctx(10**6, summarize=summarizer, manual=True, focus="the failing test")
    result = await auto.compact(history, manual)
    assert result is not None
    assert "summarize_old_turns" in result.event.tier
    assert summarizer.instructions[-1].endswith("Focus on: the failing test")


async def test_off_switch():
    history = coding_history()
    off = AutoCompaction(enabled=False)
    assert await off.compact(history, ctx(10)) is None
    assert await off.compact(history, ctx(10, manual=True)) is not None


# ---- tier 4 -------------------------------------------------------------------------------


async def test_drop_oldest_never_drops_task_pins_or_latest_and_keeps_facts():
    history = coding_history()
    summary_tier = SummarizeOldTurns(keep_fraction=0.25)
    summarized = await summary_tier.compact(
        history, ctx(approx_tokens(history), summarize=FakeSummarizer())
    )
    assert summarized is not None
    later = [
        turn(30 + i, "write_file", {"path": f"late{i}.py", "content": lines(30)}, "ok")
        for i in range(5)
    ]
    before = [*summarized.history, *later]
    total = approx_tokens(before)
    result = await DropOldest(target=0.3).compact(before, ctx(total))
    assert result is not None
    out = result.history
    assert out[0] is TASK
    assert history[3] in out  # pinned fact
    assert out[-1] is before[-1]
    summary = next(m for m in out if isinstance(m, SummaryMessage))
    # Prose gone, facts kept, and the dropped steps' facts folded in.
    assert "Task: fix the failing tests" not in summary.content
    assert render_facts(summary.facts) in summary.content
    dropped_turns = [m for m in before if isinstance(m, ModelTurn) and m not in out]
    assert dropped_turns
    old = next(m for m in before if isinstance(m, SummaryMessage))
    assert summary.facts == compute_facts(dropped_turns, old.facts)
    assert result.event.tokens_after == approx_tokens(out)


async def test_drop_oldest_creates_a_facts_summary_when_none_exists():
    history: list[Message] = [TASK] + [
        turn(i, "write_file", {"path": f"w{i}.py", "content": lines(50)}, "ok") for i in range(6)
    ]
    result = await DropOldest(target=0.4).compact(history, ctx(approx_tokens(history)))
    assert result is not None
    out = result.history
    assert out[0] is TASK and isinstance(out[1], SummaryMessage) and out[-1] is history[-1]
    dropped = [m.id for m in history if m not in out]
    assert set(out[1].replaces) == set(dropped)
    assert set(out[1].facts["files_changed"]) == {f"w{i}.py" for i in range(6)} - {
        c.arguments["path"] for m in out if isinstance(m, ModelTurn) for c in m.tool_calls
    }


# ---- chain --------------------------------------------------------------------------------


async def test_chain_runs_cheapest_first_and_stops_under_target():
    history: list[Message] = [TASK] + [
        turn(i, "read_file", {"path": f"f{i}.py"}, lines(100)) for i in range(12)
    ]
    tokens = approx_tokens(history)
    chain = AutoCompaction(keep_turns=2, min_clear_tokens=100)
    result = await chain.compact(history, ctx(tokens, summarize=FakeSummarizer()))
    assert result is not None
    # Clearing ten old results is enough: no summary, no drops.
    assert result.event.tier == "clear_tool_results"
    assert result.event.tokens_after <= 0.5 * tokens
    assert [p.tier for p in result.parts] == ["clear_tool_results"]


async def test_chain_combines_tiers_into_one_event():
    history: list[Message] = [TASK] + [
        turn(i, "read_file", {"path": f"f{i}.py"}, lines(400) if i == 11 else lines(40))
        for i in range(12)
    ]
    tokens = approx_tokens(history)
    chain = CompactionChain(
        [
            ClipToolOutputs(max_chars=2000),
            ClearOldToolResults(keep_turns=6, min_tokens=0),
            SummarizeOldTurns(keep_fraction=0.2),
            DropOldest(),
        ],
        target=0.3,
    )
    result = await chain.compact(history, ctx(int(tokens * 0.9), summarize=FakeSummarizer()))
    assert result is not None
    tiers = [p.tier for p in result.parts]
    assert tiers[:3] == ["clip_tool_outputs", "clear_tool_results", "summarize_old_turns"]
    assert result.event.tier == "+".join(tiers)
    assert result.event.tokens_before == tokens
    assert result.event.tokens_after == approx_tokens(result.history) <= int(0.3 * tokens * 0.9)
    assert result.event.dropped == tuple(d for p in result.parts for d in p.dropped)
    assert result.event.summary is not None


def test_bad_configuration_says_what_to_do():
    with pytest.raises(ConfigError, match="target <= trigger"):
        AutoCompaction(trigger=0.5, target=0.8)
    with pytest.raises(ConfigError, match="max_chars"):
        ClipToolOutputs(max_chars=10)
