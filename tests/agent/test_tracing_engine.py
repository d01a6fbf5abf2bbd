"""OpenTelemetry spans of a run on the real CPU vLLM engine with the tiny random model (marked
``engine``): the chat spans carry the engine's own token counts (prompt, cached, generated),
a finish reason and a time to the first chunk; the tool span sits under the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from gemma_agent import Agent, tool
from gemma_agent.agent import Tracing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


async def test_spans_of_a_real_engine_run(vllm_engine: Any, tmp_path: Path) -> None:
    @tool(read_only=True)
    def look() -> str:
        """Look around."""
        return "a room " * 50

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    agent = Agent(
        engine=vllm_engine, tools=[look], workspace=tmp_path, tool_choice="look", max_steps=3,
        max_output_tokens=16, temperature=0.0, seed=0, compactor=None, persist=False,
        tracing=Tracing(tracer_provider=provider),
    )  # fmt: skip
    result = await agent.run("Look around three times.")
    assert result.reason == "max_steps" and result.steps == 3
    finished = spans.get_finished_spans()
    (run,) = [s for s in finished if s.name.startswith("invoke_agent")]
    chats = sorted(
        (s for s in finished if s.name.startswith("chat")), key=lambda s: s.start_time or 0
    )
    tools = [s for s in finished if s.name.startswith("execute_tool")]
    assert len(chats) == 3 and len(tools) == 3
    for chat in chats:
        attrs = chat.attributes or {}
        assert chat.parent is not None and chat.parent.span_id == run.context.span_id
        assert int(attrs["gen_ai.usage.input_tokens"]) > 100  # the system turn and tools at least
        assert int(attrs["gen_ai.usage.output_tokens"]) > 0
        assert attrs["gen_ai.response.finish_reasons"]
        assert float(attrs["gen_ai.response.time_to_first_chunk"]) > 0
    # Each later step appends to the previous prompt: the engine's prefix cache serves most of it.
    later = [int((c.attributes or {})["gen_ai.usage.cache_read.input_tokens"]) for c in chats[1:]]
    assert all(n > 0 for n in later), later
    assert (run.attributes or {})["gen_ai.usage.input_tokens"] == sum(
        int((c.attributes or {})["gen_ai.usage.input_tokens"]) for c in chats
    )
