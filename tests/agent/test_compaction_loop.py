"""How the loop drives compaction: between steps, events, re-render, session log, undo."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent.compaction import AutoCompaction, Compaction, CompactionContext
from gemma_agent.agent.events import HistoryCompacted, Usage
from gemma_agent.agent.messages import Message, ModelTurn, SummaryMessage, UserMessage
from gemma_agent.agent.session import load_session
from gemma_agent.prompts import render_ids

from .helpers import call


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


class SummarizeAfter:
    """A test compactor: once the history has ``n`` model turns, the turns become a summary."""

    name = "test_summary"

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen: list[int] = []

    async def compact(
        self, history: Sequence[Message], ctx: CompactionContext
    ) -> Compaction | None:
        self.seen.append(ctx.tokens or -1)
        assert ctx.tokens == ctx.count_tokens(history)  # the loop's fast count is exact
        turns = [m for m in history if isinstance(m, ModelTurn)]
        if len(turns) != self.n:
            return None
        assert ctx.summarize is not None
        summary = await ctx.summarize("Summarize.")
        new = [history[0], SummaryMessage(content=summary, replaces=tuple(t.id for t in turns))]
        event = HistoryCompacted(self.name, ctx.tokens or 0, ctx.count_tokens(new), summary=summary)
        return Compaction(history=new, event=event)


async def test_compaction_between_steps_rerenders_and_is_logged(tmp_path: Path) -> None:
    outputs = [call("echo", text="a"), call("echo", text="b"), "echo was called twice", "final"]
    engine = ScriptedEngine(outputs)
    compactor = SummarizeAfter(2)
    agent = Agent(engine=engine, tools=[echo], workspace=tmp_path, compactor=compactor)
    events = [e async for e in agent.stream("go")]
    assert events[-1].reason == "final_answer" and events[-1].output == "final"
    compacted = [e for e in events if isinstance(e, HistoryCompacted)]
    assert len(compacted) == 1 and compacted[0].summary == "echo was called twice"
    history = agent.history()
    assert isinstance(history[0], UserMessage) and isinstance(history[1], SummaryMessage)
    # The summary request and the next step: thinking off, then a fresh render of the new history.
    summary_req, after = engine.requests[2], engine.requests[3]
    assert summary_req.request.thinking_budget is None and summary_req.prompt_text.endswith(
        "Summarize.<turn|>\n<|turn>model\n"
    )
    fresh = render_ids(history[:2], agent.registry.declarations(), engine.tokenizer, variant="E4B")
    assert list(after.prompt_ids) == fresh
    # The session log replays the compaction; undo brings the turns back.
    path = agent.sessions_dir / f"{agent.session_id}.jsonl"
    assert [m.id for m in load_session(path).history] == [m.id for m in history]
    agent.undo_compaction()
    restored = agent.history()
    assert [type(m).__name__ for m in restored] == [
        "UserMessage", "ModelTurn", "ModelTurn", "ModelTurn",
    ]  # fmt: skip
    assert [m.id for m in load_session(path).history] == [m.id for m in restored]


async def test_default_compactor_keeps_requests_under_the_limit(tmp_path: Path) -> None:
    @tool
    def read(n: int) -> str:
        """Read a big chunk."""
        return f"chunk {n}: " + "x" * 1500

    outputs = [call("read", n=i) for i in range(12)] + ["done"]
    engine = ScriptedEngine(outputs, max_model_len=9000)
    agent = Agent(
        engine=engine,
        tools=[read],
        workspace=tmp_path,
        max_output_tokens=600,
        compactor=AutoCompaction(keep_turns=2, min_clear_tokens=500),
        max_steps=20,
    )
    events = [e async for e in agent.stream("read everything")]
    assert events[-1].reason == "final_answer"
    limit = 9000 - 600
    assert all(len(r.prompt_ids) <= limit for r in engine.requests)
    assert any(isinstance(e, HistoryCompacted) for e in events)
    usage = [e for e in events if isinstance(e, Usage)]
    assert all(u.context_limit == limit for u in usage)
    log = (agent.sessions_dir / f"{agent.session_id}.jsonl").read_text().splitlines()
    assert any(json.loads(x)["type"] == "compaction" for x in log)


async def test_undo_after_resume_from_the_log(tmp_path: Path) -> None:
    outputs = [call("echo", text="a"), call("echo", text="b"), "summary text", "final"]
    agent = Agent(
        engine=ScriptedEngine(outputs),
        tools=[echo],
        workspace=tmp_path,
        compactor=SummarizeAfter(2),
    )
    result = await agent.run("go")
    assert isinstance(result.turns[1], SummaryMessage)
    fresh = Agent(engine=ScriptedEngine([]), tools=[echo], workspace=tmp_path, compactor=None)
    fresh.open_session(result.session_id)  # rebuilt from its log, ledger included
    fresh.undo_compaction()
    kinds = [type(m).__name__ for m in fresh.history()]
    assert kinds == ["UserMessage", "ModelTurn", "ModelTurn", "ModelTurn"]


async def test_manual_compaction_between_runs(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        [call("echo", text="a"), "first answer", "the summary", "second answer"]
    )
    compactor = SummarizeAfter(2)
    compactor.n = 99  # never automatically
    agent = Agent(engine=engine, tools=[echo], workspace=tmp_path, compactor=compactor)
    first = await agent.run("go")
    compactor.n = 2
    event = await agent.compact(focus="the echo")
    assert event is not None and event.summary == "the summary"
    assert [type(m).__name__ for m in agent.history()] == ["UserMessage", "SummaryMessage"]
    second = await agent.run("again", session_id=first.session_id)
    assert second.output == "second answer"
    assert "the summary" in engine.requests[-1].prompt_text
    assert "first answer" not in engine.requests[-1].prompt_text
