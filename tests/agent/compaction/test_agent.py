"""Compaction inside the real agent loop (ScriptedEngine, exact counting by the model layer):
a 300-step session with large tool outputs never sends a request over budget, the summary
call goes through the model, computed facts survive, and undo restores the history."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent.compaction import SUMMARY_INSTRUCTION, AutoCompaction
from gemma_agent.agent.engines.scripted import ScriptedRequest
from gemma_agent.agent.events import HistoryCompacted, RunFinished
from gemma_agent.agent.messages import ModelTurn, SummaryMessage

from ..helpers import call

MAX_MODEL_LEN = 24_576
MAX_OUTPUT = 2_048
STEPS = 300
MARKER = SUMMARY_INSTRUCTION.split(":")[0]  # "Context is running out"


@tool
def read_big(path: str) -> str:
    """Return a large deterministic file body."""
    rng = random.Random(path)
    return "\n".join(
        f"{k:4d} value = {rng.randint(0, 10**9)}  # {path}" for k in range(rng.randint(40, 160))
    )


@tool
def write_note(path: str, text: str) -> str:
    """Pretend to write a file."""
    return f"wrote {len(text)} chars to {path}"


class Script:
    """The model: a read or a write per step, a summary when asked, then the final answer."""

    def __init__(self) -> None:
        self.step = 0
        self.summaries = 0

    def __call__(self, request: ScriptedRequest) -> str:
        if MARKER in request.prompt_text[-3000:]:
            self.summaries += 1
            return f"Task: keep reading.\nPlan state: step {self.step}.\nDecisions: none.\nOpen questions: none."
        self.step += 1
        if self.step > STEPS:
            return "All files read."
        if self.step % 10 == 3:
            return call("write_note", path=f"out/note_{self.step}.txt", text="x" * 50)
        return call("read_big", path=f"src/file_{self.step % 37}.py")


async def test_300_step_agent_session_never_exceeds_the_budget(tmp_path: Path) -> None:
    script = Script()
    engine = ScriptedEngine([script] * (STEPS * 2), max_model_len=MAX_MODEL_LEN)
    agent = Agent(
        engine=engine,
        tools=[read_big, write_note],
        workspace=tmp_path,
        max_steps=STEPS + 5,
        max_output_tokens=MAX_OUTPUT,
        compactor=AutoCompaction(min_clear_tokens=1_500),
        persist=False,
    )
    events: list[Any] = [e async for e in agent.stream("Read the source files one by one.")]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.reason == "final_answer", finished
    limit = MAX_MODEL_LEN - MAX_OUTPUT
    steps = [r for r in engine.requests if MARKER not in r.prompt_text[-3000:]]
    summary_requests = [r for r in engine.requests if MARKER in r.prompt_text[-3000:]]
    sizes = [len(r.prompt_ids) for r in steps]
    assert len(steps) == STEPS + 1
    assert max(sizes) <= limit, f"a request carried {max(sizes)} > {limit} tokens"
    # The summary request is the live conversation plus the instruction (prefix cache): it may
    # pass the step budget, but always leaves room for the summary.
    assert all(len(r.prompt_ids) <= MAX_MODEL_LEN - 512 for r in summary_requests)
    compactions = [e for e in events if isinstance(e, HistoryCompacted)]
    assert any("clear_tool_results" in e.tier for e in compactions)
    assert any("summarize_old_turns" in e.tier for e in compactions)
    assert (
        script.summaries
        == len(summary_requests)
        == sum("summarize_old_turns" in e.tier for e in compactions)
    )
    for e in compactions:
        if e.tier != "clip_tool_outputs":
            assert e.tokens_before >= 0.75 * limit and e.tokens_after <= 0.5 * limit
    # Computed facts: every note written is still known, verbatim in a step or in the facts.
    history = agent.history()
    written = {f"out/note_{s}.txt" for s in range(1, STEPS + 1) if s % 10 == 3}
    visible = {
        c.arguments["path"]
        for m in history
        if isinstance(m, ModelTurn)
        for c in m.tool_calls
        if c.name == "write_note"
    }
    summary = next(m for m in history if isinstance(m, SummaryMessage))
    assert written == visible | set(summary.facts["files_changed"])
    assert "Task: keep reading." in summary.content
    # Undo the last compaction: everything it cleared or replaced comes back, later steps stay.
    last = compactions[-1]
    agent.undo_compaction()
    restored = agent.history()
    ids = {m.id for m in restored}
    full_results = {
        r.call_id
        for m in restored
        if isinstance(m, ModelTurn)
        for r in m.tool_results
        if "cleared" not in str(r.content)
    }
    assert last.dropped
    for d in last.dropped:
        assert d.id in ids or d.id in full_results, d
    assert restored[-1] == history[-1]
    assert len(restored) > len(history)


async def test_manual_compaction_through_the_agent_uses_the_focus(tmp_path: Path) -> None:
    prompts: list[str] = []
    sampled: list[tuple[float | None, int | None]] = []

    def model(request: ScriptedRequest) -> str:
        prompts.append(request.prompt_text)
        sampled.append((request.request.temperature, request.request.seed))
        if MARKER in request.prompt_text[-3000:]:
            return "Task: read files.\nOpen questions: why does file_3 fail?"
        n = len(prompts)
        return call("read_big", path=f"src/file_{n}.py") if n < 8 else "Done."

    engine = ScriptedEngine([model] * 20, max_model_len=200_000)
    agent = Agent(
        engine=engine,
        tools=[read_big],
        workspace=tmp_path,
        compactor=AutoCompaction(),
        persist=False,
        max_output_tokens=1024,
        temperature=0.0,
        seed=7,
    )
    result = await agent.run("Read some files.")
    assert result.ok
    before = agent.history()
    event = await agent.compact(focus="the failing file_3")
    assert event is not None and "summarize_old_turns" in event.tier
    assert "Focus on: the failing file_3" in prompts[-1]
    assert set(sampled) == {(0.0, 7)}  # the summary is sampled as the steps are: greedy here
    after = agent.history()
    assert after[0] == before[0]  # the task stays first
    assert isinstance(after[1], SummaryMessage)
    assert event.summary is not None and "why does file_3 fail?" in event.summary
    assert 0 < event.tokens_after < event.tokens_before
    agent.undo_compaction()
    assert agent.history() == before
