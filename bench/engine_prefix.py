"""Prefix-cache efficiency of an agent-shaped request sequence, and decode speed.

Each of 30 steps sends the previous prompt + the model's output (a constrained tool call) + a
tool response, the way the agent loop appends within a turn (docs/format.md, 'Exact appends and the
prefix cache'). Prints prompt vs cached prompt tokens per step and the overall ratio (goal >= 90%),
then tokens/s for one stream and for a batch of 8. Default: the tiny model on this machine, 32-token
KV blocks.

    .venv/bin/python bench/engine_prefix.py [--model PATH --variant V] [--steps 30]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from gemma_agent.agent.engines.base import EngineRequest
from gemma_agent.agent.engines.tiny import tiny_model_path
from gemma_agent.agent.engines.vllm import VLLMEngine
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.grammar import tool_call_grammar

TOOLS = [
    {
        "name": "read_file",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string", "maxLength": 24}},
            "required": ["path"],
        },
    }
]


async def prefix_run(engine: VLLMEngine, steps: int) -> None:
    tok = engine.tokenizer
    grammar = tool_call_grammar(TOOLS, "required", thinking=False)
    system = "You are a coding agent. " * 8
    ids = [tok.control_id(T.BOS)]
    ids += tok.encode(
        f"<|turn>system\n{system}<turn|>\n<|turn>user\nFix the failing test.<turn|>\n"
    )
    ids += tok.encode("<|turn>model\n")
    total_prompt = total_cached = 0
    print(f"{'step':>4} {'prompt':>7} {'cached':>7} {'hit':>6} {'output':>6}")
    for step in range(1, steps + 1):
        out: list[int] = []
        usage = None
        request = EngineRequest(ids, max_tokens=64, seed=step, grammar=grammar)
        async for d in engine.generate(request):
            out += d.token_ids
            usage = d.usage or usage
        assert usage is not None
        total_prompt += usage.prompt_tokens
        total_cached += usage.cached_prompt_tokens
        hit = usage.cached_prompt_tokens / usage.prompt_tokens
        print(
            f"{step:>4} {usage.prompt_tokens:>7} {usage.cached_prompt_tokens:>7} {hit:>6.1%} {len(out):>6}"
        )
        # Normalize the tail to <|tool_response> (as the agent does), then append the tool result.
        tr = tok.control_id(T.TOOL_RESPONSE_OPEN)
        if not out or out[-1] != tr:
            out = (
                [*out[:-1], tr]
                if out and out[-1] in (tok.control_id(T.TURN_CLOSE), tok.control_id(T.EOS))
                else [*out, tr]
            )
        result = f"line {step}: def test_{step}(): assert add({step}, 1) == {step + 1}\n" * 3
        ids = ids + out + tok.encode("response:read_file{content:")
        ids += [tok.control_id(T.STR), *tok.encode_text(result), tok.control_id(T.STR)]
        ids += tok.encode("}<tool_response|>")
    print(
        f"overall: {total_cached}/{total_prompt} prompt tokens from the prefix cache = "
        f"{total_cached / total_prompt:.1%} (goal >= 90%)"
    )


async def speed(engine: VLLMEngine) -> None:
    tok = engine.tokenizer
    ids = [tok.control_id(T.BOS), *tok.encode("<|turn>user\nWrite a story.<turn|>\n<|turn>model\n")]
    free = "start: /(?s:.{4000})/"  # no stop token allowed: every request runs to max_tokens

    async def one(seed: int) -> int:
        n = 0
        async for d in engine.generate(EngineRequest(ids, max_tokens=256, seed=seed, grammar=free)):
            n += len(d.token_ids)
        return n

    await one(0)  # warm-up
    t = time.perf_counter()
    n = await one(1)
    print(f"decode, 1 stream : {n / (time.perf_counter() - t):7.1f} tokens/s")
    t = time.perf_counter()
    counts = await asyncio.gather(*(one(s) for s in range(8)))
    print(f"decode, 8 streams: {sum(counts) / (time.perf_counter() - t):7.1f} tokens/s (total)")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint folder (default: the tiny model)")
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    model = args.model or tiny_model_path()
    t = time.perf_counter()
    engine = await VLLMEngine.start(
        model, variant=args.variant, max_model_len=16384, block_size=32, dtype="float32"
    )
    print(f"engine start: {time.perf_counter() - t:.1f} s ({engine.info.model})")
    try:
        await prefix_run(engine, args.steps)
        await speed(engine)
    finally:
        await engine.aclose()


if __name__ == "__main__":
    asyncio.run(main())
