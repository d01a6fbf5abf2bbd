"""Compaction and the prefix cache: the summary request is an append to the live conversation
(it reuses the whole cached prefix, reasoning and non-canonical model output included), and a
run breaks the cache at most once per compaction (the re-render of the compacted history)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent.compaction import SUMMARY_INSTRUCTION, AutoCompaction
from gemma_agent.agent.engines.scripted import ScriptedRequest
from gemma_agent.agent.events import HistoryCompacted
from gemma_agent.agent.messages import Message, ToolResult, UserMessage
from gemma_agent.agent.model import ModelLayer

from ..helpers import call, thought

MARKER = SUMMARY_INSTRUCTION.split(":")[0]


@tool
def read_chunk(n: int) -> str:
    """Return chunk n of a log."""
    return "\n".join(f"[{n}:{k}] event {n * 7919 % 10007 + k} ok" for k in range(6))


def _model(think: bool, spaced: bool):  # type: ignore[no-untyped-def]
    """A model that reads chunk after chunk; with ``spaced`` its call text is not canonical
    (a space after the colon), as real models sometimes write it."""
    steps = itertools.count(1)

    def answer(request: ScriptedRequest) -> str:
        if MARKER in request.prompt_text[-2000:]:
            return "Task: read the log.\nPlan state: reading.\nOpen questions: none."
        n = next(steps)
        prefix = thought(f"Chunk {n} next.") if think else ""
        text = call("read_chunk", n=n)
        if spaced:
            text = text.replace("n:", "n: ")
        return prefix + text

    return answer


@pytest.mark.parametrize(("think", "spaced"), [(True, False), (False, True)])
async def test_summary_request_appends_to_the_live_prompt(
    tmp_path: Path, think: bool, spaced: bool
) -> None:
    engine = ScriptedEngine([_model(think, spaced)] * 80, max_model_len=6_000)
    agent = Agent(
        engine=engine,
        tools=[read_chunk],
        workspace=tmp_path,
        thinking=think,
        max_steps=40,
        max_output_tokens=512,
        compactor=AutoCompaction(),
        persist=False,
    )
    events = [e async for e in agent.stream("Read the log chunk by chunk.")]
    compactions = [e for e in events if isinstance(e, HistoryCompacted)]
    summaries = [i for i, r in enumerate(engine.requests) if MARKER in r.prompt_text[-2000:]]
    assert summaries and len(summaries) == sum("summarize" in e.tier for e in compactions)
    breaks = 0
    for i in range(1, len(engine.requests)):
        prev, cur = engine.requests[i - 1], engine.requests[i]
        prompt = list(cur.prompt_ids)
        prev_prompt = list(prev.prompt_ids)
        shared = next(
            (k for k, (a, b) in enumerate(zip(prompt, prev_prompt, strict=False)) if a != b),
            min(len(prompt), len(prev_prompt)),
        )
        if i in summaries:
            # The whole previous step and its tool round are reused: an exact append.
            assert prompt[: len(prev_prompt)] == prev_prompt, f"summary request {i} re-rendered"
            assert prev.output is not None
            generated = engine.tokenizer.encode(prev.output)
            assert (
                prompt[len(prev_prompt) : len(prev_prompt) + len(generated) - 1] == (generated[:-1])
            )
        elif shared < len(prev_prompt):
            breaks += 1
            assert i - 1 in summaries, f"request {i} broke the cache without a compaction"
    assert breaks == len(summaries)  # one break per compaction: the compacted re-render


@pytest.mark.parametrize("variant", ["E4B", "31B"])
async def test_summary_append_equals_the_canonical_render_for_canonical_output(
    variant: str,
) -> None:
    """Where the model's ids are canonical (thinking off), appending the instruction to the
    live prompt gives exactly the canonical render of the history plus the instruction."""
    engine = ScriptedEngine([call("read_chunk", n=1)], variant=variant)
    layer = ModelLayer(
        engine,
        declarations=[
            {
                "type": "function",
                "function": {
                    "name": "read_chunk",
                    "description": "Return chunk n of a log.",
                    "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
                },
            }
        ],
        instructions="You read logs.",
        thinking=False,
        max_output_tokens=256,
    )
    history: list[Message] = [UserMessage(content="Read the log.")]
    prompt = list(layer.prompt_for(history))
    gen = await layer.generate(prompt, step=1, emit=lambda _e: None, max_tokens=256)
    (c,) = gen.calls
    result = ToolResult(call_id=c.id, name=c.name, content="line 1\nline 2")
    turn = gen.turn().model_copy(update={"tool_results": (result,)})
    layer.stage_tool_round(gen, turn)
    history.append(turn)
    instruction = "Summarize <|turn> the work."  # control text in payload stays text
    appended = layer.summary_prompt(history, instruction)
    canonical = layer.render([*history, UserMessage(content=instruction)])
    assert appended[: len(prompt)] == prompt
    if variant == "31B":
        # The family-L thinking-off prefill precedes the generated calls in the live prompt
        # only (docs/format.md, 'Re-rendering differences'): without it, the append is the
        # canonical render.
        prefill = engine.tokenizer.encode("<|channel>thought\n<channel|>")
        assert prompt[-len(prefill) :] == prefill
        appended = appended[: len(prompt) - len(prefill)] + appended[len(prompt) :]
    assert appended == canonical
    # A history that is not the live one is rendered canonically.
    other = [UserMessage(content="Another task.")]
    assert layer.summary_prompt(other, instruction) == layer.render(
        [*other, UserMessage(content=instruction)]
    )
