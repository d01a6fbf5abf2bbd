"""End to end on the real CPU vLLM engine with the tiny random model (marked ``engine``).

The model is noise, so max_steps bounds the run and the test checks the machinery: with
tool_choice="required" every step is a grammar-constrained, well-formed call that really runs,
each request is an append of the previous one and the engine's prefix cache serves it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import pytest
from gemma_agent import Agent, tool
from gemma_agent.agent.events import ToolCallFinished, Usage
from gemma_agent.agent.messages import ModelTurn
from gemma_agent.tools import ToolRegistry

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def test_three_steps_of_grammar_constrained_real_tool_calls(
    vllm_engine: Any, tmp_path: Path
) -> None:
    ran: list[str] = []

    @tool
    def tick() -> str:
        """Advance the clock."""
        ran.append("tick")
        return "ticked"

    @tool
    def pick(color: Literal["red", "green"]) -> str:
        """Pick a color."""
        ran.append(color)
        return color

    agent = Agent(
        engine=vllm_engine,
        # Enum and no-argument tools: a random model cannot ramble inside an open string.
        tools=ToolRegistry([tick, pick]),
        workspace=tmp_path,
        tool_choice="required",
        max_steps=3,
        max_output_tokens=600,
        temperature=0.0,
        compactor=None,
    )
    events = [e async for e in agent.stream("Take notes.")]
    fin = events[-1]
    # Greedy decoding on the fixed tiny model: deterministic. A final_answer call is a real
    # call too, but only after three steps of the tools.
    assert fin.kind == "run_finished" and fin.steps == 3, fin
    assert fin.reason in ("max_steps", "final_answer"), fin
    turns = [m for m in agent.history() if isinstance(m, ModelTurn)]
    assert len(turns) == 3 and all(t.tool_calls for t in turns)
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert len(finished) >= 3 and not any(e.result.is_error for e in finished)
    assert len(ran) == len([e for e in finished if e.call.name != "final_answer"]) >= 2
    assert all(e.call.name in ("tick", "pick", "final_answer") for e in finished)
    notices = [e for e in events if e.kind == "notice"]
    assert not notices, notices  # no malformed output: the grammar held
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 3
    # Steps 2 and 3 append to the previous request: the prefix cache serves the earlier part.
    for before, after in itertools.pairwise(usage):
        assert after.prompt_tokens > before.context_tokens - 1
        assert after.cached_prompt_tokens >= before.prompt_tokens - 64  # 32-token blocks


async def test_agent_builds_its_engine_from_a_model_name(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    agent = Agent(
        model="tiny",
        engine_options={"max_model_len": 2048, "quiet": True},
        workspace=tmp_path,
        max_steps=1,
        max_output_tokens=8,
        temperature=0.0,
        compactor=None,
    )
    try:
        result = await agent.run("Say hi.")
        engine = await agent.engine()
        assert engine.info.model == "tiny" and engine.info.max_model_len == 2048
        assert result.usage.requests >= 1 and result.usage.generated_tokens >= 1
        assert result.reason in ("final_answer", "max_steps", "too_many_errors")
    finally:
        await agent.aclose()
    assert agent._engine is None  # the agent closed the engine it built
