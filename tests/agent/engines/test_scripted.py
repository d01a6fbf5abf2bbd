"""ScriptedEngine: the engine users' tests run on."""

from __future__ import annotations

import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.agent.engines.base import Engine, EngineRequest
from gemma_agent.errors import EngineRequestFailed


async def drain(
    engine: ScriptedEngine, prompt: list[int], **kw: object
) -> tuple[list[int], object]:
    ids: list[int] = []
    last = None
    async for d in engine.generate(EngineRequest(prompt_ids=prompt, **kw)):  # type: ignore[arg-type]
        ids += d.token_ids
        last = d
    return ids, last


async def test_outputs_stop_markers_usage_and_requests() -> None:
    engine = ScriptedEngine(
        ["Hi", "<|tool_call>call:f{}<tool_call|>", lambda r: f"{len(r.prompt_ids)}"]
    )
    assert isinstance(engine, Engine)
    tok = engine.tokenizer
    ids, last = await drain(engine, [2, 1001])
    assert tok.decode(ids) == "Hi<turn|>" and last.finish_reason == "stop"  # type: ignore[attr-defined]
    assert last.usage.prompt_tokens == 2 and last.usage.cached_prompt_tokens == 0  # type: ignore[attr-defined]
    prompt2 = [2, 1001, *ids, 1002]
    ids2, last2 = await drain(engine, prompt2)
    assert tok.decode(ids2).endswith("<tool_call|><|tool_response>")
    assert last2.usage.cached_prompt_tokens == 2 + len(ids)  # type: ignore[attr-defined]
    ids3, _ = await drain(engine, [2, 1050])
    assert tok.decode(ids3) == "2<turn|>"
    assert engine.requests[0].prompt_text == tok.decode([2, 1001])
    engine.assert_complete()


async def test_truncation_exceptions_and_completeness() -> None:
    engine = ScriptedEngine(["abcdefgh", EngineRequestFailed("boom"), "left over"], chunk_tokens=2)
    ids, last = await drain(engine, [2], max_tokens=4)
    assert len(ids) == 4 and last.finish_reason == "length"  # type: ignore[attr-defined]
    with pytest.raises(EngineRequestFailed):
        await drain(engine, [2])
    with pytest.raises(AssertionError, match="1 of 3"):
        engine.assert_complete()
    await drain(engine, [2])
    with pytest.raises(AssertionError, match="only 3 outputs"):
        await drain(engine, [2])


def test_tool_call_and_thought_write_what_the_parser_reads() -> None:
    from gemma_agent.prompts import parse_output

    call = ScriptedEngine.tool_call
    text = ScriptedEngine.thought("Plan.") + call(
        "edit", path="a.py", edits=[{"old": 'x = "1"', "new": None}], n=3, on=True, r=0.5
    )
    parsed = parse_output(text)
    assert parsed.reasoning == "Plan." and len(parsed.tool_calls) == 1
    got = parsed.tool_calls[0]
    assert got.name == "edit"
    assert got.arguments == {
        "path": "a.py", "edits": [{"old": 'x = "1"', "new": None}], "n": 3, "on": True, "r": 0.5
    }  # fmt: skip
