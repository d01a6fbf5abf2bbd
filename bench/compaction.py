"""Compaction: how long it takes, and how well it keeps the engine's prefix cache hot.

Part 1 (always): time to compact a 200-turn coding history with each tier and the default
chain, counting tokens exactly with the model layer (the model's summary call is an instant
stand-in, so it is excluded). Goal: < 50 ms for the chain.

Part 2 (when vLLM is installed; skip with --no-engine): a 40-step agent run on the embedded CPU
vLLM engine with the tiny random model and a 4096-token context. The tool choice is forced to
one tool, so every step is a tool round that adds a tool output; the default chain compacts
when the history reaches 75 % of the budget. Prints per request: prompt tokens, cached prompt
tokens, and the compaction events; then the overall cache ratio (goal >= 90 %) and the cache
breaks per compaction (goal <= 1).

    .venv/bin/python bench/compaction.py [--turns 200] [--repeat 15] [--no-engine]
        [--steps 40] [--max-model-len 4096] [--output-lines 12]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from gemma_agent.agent.compaction import (
    SUMMARY_INSTRUCTION,
    AutoCompaction,
    ClearOldToolResults,
    CompactionContext,
    DropOldest,
    SummarizeOldTurns,
)
from gemma_agent.agent.engines.base import EngineDelta, EngineRequest
from gemma_agent.agent.events import HistoryCompacted, RunFinished, Usage
from gemma_agent.agent.messages import Message, ModelTurn, ToolCall, ToolResult, UserMessage

# ---- part 1: compaction time ------------------------------------------------------------------


def synthetic_history(turns: int, seed: int = 0) -> list[Message]:
    """A coding session: file reads (the bulk), test runs, edits, plan updates."""
    rng = random.Random(seed)
    history: list[Message] = [UserMessage(content="Make the failing tests pass; keep the API.")]
    for i in range(turns):
        path = f"src/pkg/mod_{rng.randrange(30)}.py"
        roll = rng.random()
        if roll < 0.55:
            body = "\n".join(
                f"{k:4d}    return helper_{k}(x) + {rng.randrange(99)}"
                for k in range(rng.randint(20, 90))
            )
            name, args, content = "read_file", {"path": path}, body
        elif roll < 0.75:
            out = "\n".join(
                f"tests/test_{k}.py::test_case PASSED" for k in range(rng.randint(5, 40))
            )
            name, args = "run_shell", {"command": "pytest -q"}
            content = {"exit_code": rng.choice((0, 1)), "output": out + "\n3 failed, 40 passed"}
        elif roll < 0.95:
            name, args, content = "edit_file", {"path": path, "old": "a", "new": "b"}, "ok"
        else:
            items = [{"text": f"stage {k}", "status": "pending"} for k in range(4)]
            name, args, content = "update_plan", {"items": items}, "plan updated"
        call = ToolCall(id=f"call_{i}", name=name, arguments=args)
        history.append(
            ModelTurn(
                text="" if rng.random() < 0.8 else "Checking the next module.",
                tool_calls=(call,),
                tool_results=(ToolResult(call_id=call.id, name=name, content=content),),
            )
        )
    return history


async def instant_summary(instruction: str) -> str:
    return "Task: fix tests.\nPlan state: stage 2.\nDecisions: none.\nOpen questions: none."


def counter() -> tuple[Any, str]:
    """Exact counting as the agent does it (model layer render + tokenize), with the tiny
    model's real tokenizer when it can be built, else the byte tokenizer."""
    from gemma_agent.agent.engines.scripted import ScriptedEngine
    from gemma_agent.agent.model import ModelLayer

    tokenizer = None
    name = "ByteTokenizer"
    try:
        from gemma_agent.agent.engines.tiny import tiny_model_path
        from gemma_agent.agent.engines.tokenizer import HFTokenizer

        tokenizer = HFTokenizer(tiny_model_path())
        name = "tiny model's BPE tokenizer"
    except Exception as e:  # the byte tokenizer still gives exact counts for its own ids
        print(f"(tiny tokenizer unavailable: {e}; using the byte tokenizer)")
    engine = ScriptedEngine([], tokenizer=tokenizer, variant="E4B", max_model_len=131_072)
    decl = [
        {
            "type": "function",
            "function": {
                "name": n,
                "description": "a tool",
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for n in ("read_file", "run_shell", "edit_file", "update_plan")
    ]
    layer = ModelLayer(
        engine,
        declarations=decl,
        instructions="You are a coding agent.",
        thinking=False,
        max_output_tokens=4096,
    )
    return layer, name


async def time_compaction(turns: int, repeat: int) -> None:
    layer, tok_name = counter()
    history = synthetic_history(turns)
    t0 = time.perf_counter()
    tokens = layer.count_tokens(history)
    count_ms = (time.perf_counter() - t0) * 1000
    # The budget puts the history just past the 75 % trigger.
    limit = int(tokens / 0.8)
    print(f"\n== compaction time: {turns} turns, {tokens} tokens ({tok_name}), limit {limit}")
    print(f"one exact count (render + tokenize): {count_ms:.1f} ms")

    counting = [0.0]

    def timed_count(messages: Sequence[Message]) -> int:
        t = time.perf_counter()
        try:
            return int(layer.count_tokens(messages))
        finally:
            counting[0] += time.perf_counter() - t

    def ctx(**kw: Any) -> CompactionContext:
        return CompactionContext(
            count_tokens=timed_count,
            limit_tokens=limit,
            summarize=instant_summary,
            tokens=tokens,
            **kw,
        )

    cases: list[tuple[str, Any]] = [
        ("clear_tool_results", ClearOldToolResults(min_tokens=0)),
        ("summarize_old_turns", SummarizeOldTurns()),
        ("drop_oldest", DropOldest()),
        ("auto chain (default)", None),
    ]
    for label, tier in cases:
        times = []
        own = []
        result = None
        for _ in range(repeat):
            compactor = tier if tier is not None else AutoCompaction()
            counting[0] = 0.0
            t0 = time.perf_counter()
            result = await compactor.compact(history, ctx())
            times.append((time.perf_counter() - t0) * 1000)
            own.append(times[-1] - counting[0] * 1000)
        assert result is not None, label
        ev = result.event
        print(
            f"{label:22s} median {statistics.median(times):6.1f} ms (of which exact counting "
            f"{statistics.median(times) - statistics.median(own):5.1f})  max {max(times):6.1f} ms  "
            f"tokens {ev.tokens_before} -> {ev.tokens_after}  [{ev.tier}]"
        )
    print("goal: < 50 ms for the chain (the model's summary call excluded)")


# ---- part 2: prefix cache on the real engine -------------------------------------------------


@dataclass
class Request:
    kind: str
    prompt: int
    cached: int
    generated: int


class RecordingEngine:
    """Delegates to an engine and records the usage of every request (steps and summaries)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.info = inner.info
        self.tokenizer = inner.tokenizer
        self.requests: list[Request] = []
        self.kind = "step"

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        tail = self.tokenizer.decode(list(request.prompt_ids[-400:]))
        kind = "summary" if SUMMARY_INSTRUCTION.split(":")[0] in tail else "step"
        async for delta in self.inner.generate(request):
            if delta.usage is not None:
                u = delta.usage
                self.requests.append(
                    Request(kind, u.prompt_tokens, u.cached_prompt_tokens, u.generated_tokens)
                )
                print(
                    f"  request {len(self.requests):3d} {kind:7s} prompt {u.prompt_tokens:5d}  "
                    f"cached {u.cached_prompt_tokens:5d}  generated {u.generated_tokens:4d}"
                )
            yield delta

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def engine_run(steps: int, max_model_len: int, output_lines: int) -> None:
    from gemma_agent import Agent, tool
    from gemma_agent.agent.engines.tiny import tiny_model_path
    from gemma_agent.agent.engines.vllm import VLLMEngine, vllm_installed

    if not vllm_installed():
        print("\n(vLLM is not installed: skipping the engine run; `make install`)")
        return
    counter_box = {"n": 0}

    @tool
    def next_chunk() -> str:
        """Return the next chunk of the log being read."""
        counter_box["n"] += 1
        n = counter_box["n"]
        rng = random.Random(n)
        return "\n".join(f"[{n}:{k}] event {rng.randrange(10**6)} ok" for k in range(output_lines))

    print(f"\n== prefix cache: {steps} steps, tiny model, max_model_len {max_model_len}")
    t0 = time.perf_counter()
    inner = await VLLMEngine.start(
        tiny_model_path(),
        variant="tiny",
        name="tiny",
        max_model_len=max_model_len,
        block_size=32,
        max_num_seqs=4,
        dtype="float32",
    )
    print(f"engine started in {time.perf_counter() - t0:.0f} s")
    engine = RecordingEngine(inner)
    try:
        agent = Agent(
            engine=engine,  # type: ignore[arg-type]
            tools=[next_chunk],
            tool_choice="next_chunk",
            max_steps=steps,
            max_output_tokens=256,
            compactor=AutoCompaction(keep_turns=3),
            persist=False,
            temperature=0.0,
            seed=0,
        )
        summaries = 0
        step_rows: list[tuple[int, int, int, int]] = []
        compactions: list[tuple[int, HistoryCompacted]] = []
        step = 0
        async for event in agent.stream("Read the log chunk by chunk and report anomalies."):
            if isinstance(event, Usage):
                step = event.step
                step_rows.append(
                    (
                        event.step,
                        event.prompt_tokens,
                        event.cached_prompt_tokens,
                        event.context_tokens,
                    )
                )
                print(
                    f"step {event.step:3d}  prompt {event.prompt_tokens:5d}  cached {event.cached_prompt_tokens:5d}  "
                    f"context {event.context_tokens:5d}/{event.context_limit}"
                )
            elif isinstance(event, HistoryCompacted):
                compactions.append((step, event))
                summaries += "summarize" in event.tier
                print(
                    f"           compaction [{event.tier}] {event.tokens_before} -> {event.tokens_after} tokens, "
                    f"{len(event.dropped)} items"
                )
            elif isinstance(event, RunFinished):
                print(f"run finished: {event.reason} after {event.steps} steps {event.error or ''}")
    finally:
        await engine.aclose()
    reqs = engine.requests
    prompt = sum(r.prompt for r in reqs)
    cached = sum(r.cached for r in reqs)
    print(
        f"requests: {len(reqs)} (steps {len(step_rows)}, summary calls {len(reqs) - len(step_rows)})"
    )
    if prompt:
        print(
            f"prompt tokens {prompt}, served from the prefix cache {cached}: {100 * cached / prompt:.1f} % (goal >= 90 %)"
        )
    # A cache break: a request whose cached prefix falls more than two blocks short of the
    # previous request's prompt (caching is block-granular: the last partial block never hits).
    breaks = sum(1 for prev, cur in itertools.pairwise(reqs) if cur.cached < prev.prompt - 64)
    size_compactions = sum(1 for _, e in compactions if e.tier != "clip_tool_outputs")
    summary_calls = [r for r in reqs if r.kind == "summary"]
    print(
        f"summary calls: {len(summary_calls)}, their uncached tokens: "
        f"{sum(r.prompt - r.cached for r in summary_calls)}"
    )
    print(
        f"cache breaks: {breaks}; compactions that change old context: {size_compactions} "
        f"(goal: at most one break per compaction)"
    )
    # Where the misses come from: compaction (summary calls + the re-prefill after a break)
    # versus what every step adds anyway (its tool output and the previous generation).
    after_break = [cur for prev, cur in itertools.pairwise(reqs) if cur.cached < prev.prompt - 64]
    compaction_miss = sum(r.prompt - r.cached for r in (*summary_calls, *after_break))
    step_miss = prompt - cached - compaction_miss
    if prompt:
        print(
            f"uncached tokens: {prompt - cached} = compaction {compaction_miss} "
            f"({100 * compaction_miss / prompt:.1f} % of prompt tokens) + new step content "
            f"{step_miss} ({100 * step_miss / prompt:.1f} %)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-engine", action="store_true")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-model-len", type=int, default=4096)
    # Tool output per step, in lines (~25 tiny-tokenizer tokens each). Scaled to the 4K context
    # like ~500-token outputs in a 128K one; larger outputs mean more new tokens per step.
    parser.add_argument("--output-lines", type=int, default=2)
    args = parser.parse_args(argv)
    asyncio.run(time_compaction(args.turns, args.repeat))
    if not args.no_engine:
        asyncio.run(engine_run(args.steps, args.max_model_len, args.output_lines))


if __name__ == "__main__":
    main()
