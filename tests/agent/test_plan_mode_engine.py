"""Plan mode on the real CPU vLLM engine with the tiny random model (marked ``engine``): the
model is noise, so whatever it calls is what the grammar allows. Fifty grammar-constrained calls
in plan mode contain no write tool, although every tool stays declared in the prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

import pytest
from gemma_agent import Agent, tool
from gemma_agent.agent.events import RunFinished, ToolCallStarted

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def test_fifty_plan_mode_calls_contain_no_write_tool(
    vllm_engine: Any, tmp_path: Path
) -> None:
    ran: list[str] = []

    # Enum and no-argument tools: a random model cannot ramble inside an open string.
    @tool(read_only=True)
    def look() -> str:
        """Look around."""
        ran.append("look")
        return "a room"

    @tool(read_only=True)
    def peek(color: Literal["red", "green"]) -> str:
        """Peek at a color."""
        ran.append("peek")
        return color

    @tool
    def erase() -> str:
        """Erase everything."""
        ran.append("erase")
        return "erased"

    @tool
    def paint(color: Literal["red", "green"]) -> str:
        """Paint the wall."""
        ran.append("paint")
        return color

    # Writes first in the declarations: a model that favours the first tools would pick them.
    agent = Agent(
        engine=vllm_engine,
        tools=[erase, paint, look, peek],
        workspace=tmp_path,
        mode="plan",
        tool_choice="required",
        max_steps=4,
        max_output_tokens=48,
        max_redecodes=0,
        temperature=1.0,
        compactor=None,
        persist=False,
        loop_stop_after=100,
        loop_nudge_after=100,
    )
    calls: list[str] = []

    async def one() -> None:  # unseeded at temperature 1: each session samples its own calls
        async for event in agent.stream("Decide what to change."):
            if isinstance(event, ToolCallStarted):
                calls.append(event.call.name)
            elif isinstance(event, RunFinished):
                assert event.reason != "engine_error", event

    for _batch in range(6):  # sessions run concurrently: one engine batches them
        await asyncio.gather(*(one() for _ in range(8)))
        if len(calls) >= 50:
            break
    assert len(calls) >= 50, calls
    assert set(calls) <= {"look", "peek", "final_answer"}, calls
    assert {"look", "peek"} & set(calls)
    assert "erase" not in ran and "paint" not in ran
