"""On the real vLLM engine (tiny model): the next tool-round prompt (prompt + generated ids +
tool response) is served from the prefix cache past the previous prompt, through the
generated ids. vLLM 0.32 keeps sliding-window blocks only at the end of each prompt unless
``prefix_cache_retention_interval`` asks for dense retention, which VLLMEngine.start does."""

from __future__ import annotations

import pytest
from gemma_agent.agent.engines.base import EngineRequest

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

# Gemma 4's hybrid layout makes cache hits 64-token granular with block_size=32
# (docs/engine-cpu.md, 'Prefix caching').
GRANULARITY = 64


async def _run(engine, ids: list[int], grammar: str) -> tuple[list[int], int]:
    out: list[int] = []
    cached = -1
    async for d in engine.generate(EngineRequest(ids, max_tokens=400, grammar=grammar)):
        out += d.token_ids
        if d.usage is not None:
            cached = d.usage.cached_prompt_tokens
    return out, cached


async def test_generated_ids_are_served_from_the_prefix_cache(vllm_engine) -> None:
    tok = vllm_engine.tokenizer
    ids = [tok.bos_id, *tok.encode("<|turn>user\n" + "Scan the log for errors. " * 40)]
    ids += tok.encode("<turn|>\n<|turn>model\n")
    # A long, fixed output (a tool call) so the generated part spans several cache blocks.
    words = " ".join(f"line{k}" for k in range(90))
    grammar = f'start: <|tool_call> "call:scan{{note:" <|"|> "{words}" <|"|> "}}" <tool_call|> <|tool_response>'
    out, _ = await _run(vllm_engine, ids, grammar)
    assert len(out) >= 3 * GRANULARITY, len(out)
    more = ids + out + tok.encode('response:scan{value:<|"|>no errors<|"|>}<tool_response|>')
    _, cached = await _run(vllm_engine, more, 'start: "done" <turn|>')
    # Everything that had its KV computed (the prompt and all generated ids but the last),
    # in whole blocks; far past the previous prompt.
    computed = len(ids) + len(out) - 1
    assert cached >= computed // GRANULARITY * GRANULARITY, (cached, len(ids), len(out))
    assert cached > len(ids) + GRANULARITY
