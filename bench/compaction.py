"""Compaction: how long it takes, and how well it keeps the engine's prefix cache hot.

Part 1 (always): time to compact a 200-turn coding history with each tier and the default
chain, counting tokens exactly with the model layer (the model's summary call is an instant
stand-in, so it is excluded). Goal: < 50 ms for the chain.

Part 2 (when vLLM is installed; skip with --no-engine): a 40-step agent run on the embedded CPU
vLLM engine with the tiny random model, at 4096 and at 8192 tokens of context. The tool choice
is forced to one tool, so every step is a tool round that adds tool outputs (2 lines, ~40 tokens
each: about 1 % of a 4K context per output, like a 1.2K-token output in a 128K one); the
default chain compacts when the history reaches 80 % of the budget (75 % after big steps). The
engine runs with its product defaults (KV blocks of 32 tokens on CPU). Prints per request: prompt
tokens, cached prompt tokens, the tokens some earlier request had computed (token-exact
reuse), generated tokens, and the compaction events; then the overall cache ratio (goal >= 90
%), where the misses come from (new step content, compaction, the engine's block rounding) and
the cache breaks per compaction (goal <= 1).

    .venv/bin/python bench/compaction.py [--turns 200] [--repeat 15] [--no-engine]
        [--steps 40] [--max-model-len 4096 8192] [--output-lines 2] [--keep-fraction F]
        [--retention-interval 0] [--trigger F] [--block-size N]
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
from gemma_agent.agent.events import HistoryCompacted, RunFinished, TurnFinished, Usage
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
    # The budget puts the history just past the trigger.
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
    prompt_ids: list[int]
    generated: list[int]
    cached: int
    reusable: int = 0  # longest prefix some earlier request had computed (token-exact)
    after_compaction: bool = False


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class RecordingEngine:
    """Delegates to an engine and records every request: prompt ids, generated ids, cached
    prompt tokens, and how much of the prompt an earlier request had computed (its prompt
    and its generated ids but the last, whose KV is never computed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.info = inner.info
        self.tokenizer = inner.tokenizer
        self.requests: list[Request] = []
        self._marker = SUMMARY_INSTRUCTION.split(":")[0]

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        prompt = list(request.prompt_ids)
        kind = "summary" if self._marker in self.tokenizer.decode(prompt[-400:]) else "step"
        generated: list[int] = []
        async for delta in self.inner.generate(request):
            generated += delta.token_ids
            if delta.usage is not None:
                reusable = max(
                    (
                        _common_prefix(prompt, r.prompt_ids + r.generated[:-1])
                        for r in self.requests
                    ),
                    default=0,
                )
                self.requests.append(
                    Request(kind, prompt, generated, delta.usage.cached_prompt_tokens, reusable)
                )
            yield delta

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class RunFigures:
    max_model_len: int
    prompt: int
    cached: int
    reusable: int
    compaction_new: int
    step_new: int
    compactions: int
    breaks: int
    steps: int


async def engine_run(
    steps: int,
    max_model_len: int,
    output_lines: int,
    retention: int | None,
    keep: float | None,
    trigger: float | None = None,
    block_size: int | None = None,
) -> RunFigures | None:
    from gemma_agent import Agent, tool
    from gemma_agent.agent.engines.tiny import tiny_model_path
    from gemma_agent.agent.engines.vllm import VLLMEngine, vllm_installed

    if not vllm_installed():
        print("\n(vLLM is not installed: skipping the engine run; `make install`)")
        return None
    counter_box = {"n": 0}

    @tool
    def next_chunk() -> str:
        """Return the next chunk of the log being read."""
        counter_box["n"] += 1
        n = counter_box["n"]
        rng = random.Random(n)
        return "\n".join(f"[{n}:{k}] event {rng.randrange(10**6)} ok" for k in range(output_lines))

    blocks = f"block_size {block_size}" if block_size else "the engine's default block size"
    print(f"\n== prefix cache: {steps} steps, tiny model, max_model_len {max_model_len}, {blocks}")
    t0 = time.perf_counter()
    inner = await VLLMEngine.start(
        tiny_model_path(),
        variant="tiny",
        name="tiny",
        max_model_len=max_model_len,
        block_size=block_size,
        max_num_seqs=4,
        dtype="float32",
        prefix_cache_retention_interval=retention,
    )
    print(f"engine started in {time.perf_counter() - t0:.0f} s")
    engine = RecordingEngine(inner)
    compactions: list[HistoryCompacted] = []
    calls = 0
    outputs: list[int] = []
    options: dict[str, Any] = {"keep_turns": 3}
    if keep is not None:
        options["keep_fraction"] = keep
    if trigger is not None:
        options["trigger"] = trigger
    try:
        agent = Agent(
            engine=engine,  # type: ignore[arg-type]
            tools=[next_chunk],
            tool_choice="next_chunk",
            max_steps=steps,
            max_output_tokens=256,
            compactor=AutoCompaction(**options),
            persist=False,
            temperature=0.0,
            seed=0,
        )
        print(
            "req  kind     prompt  cached  reusable  generated   (context after the step / limit)"
        )
        seen = 0
        async for event in agent.stream("Read the log chunk by chunk and report anomalies."):
            for r in engine.requests[seen:]:
                seen += 1
                print(
                    f"{seen:3d}  {r.kind:7s} {len(r.prompt_ids):6d}  {r.cached:6d}  "
                    f"{r.reusable:8d}  {len(r.generated):9d}",
                    end="" if r.kind == "step" else "\n",
                )
            if isinstance(event, Usage):
                print(f"   ({event.context_tokens}/{event.context_limit})")
            elif isinstance(event, HistoryCompacted):
                compactions.append(event)
                if engine.requests:
                    engine.requests[-1].after_compaction = True  # marks the request before
                print(
                    f"     compaction [{event.tier}] {event.tokens_before} -> "
                    f"{event.tokens_after} tokens, {len(event.dropped)} items"
                )
            elif isinstance(event, TurnFinished):
                calls += len(event.turn.tool_calls)
                outputs += [engine.count_tokens(str(r.content)) for r in event.turn.tool_results]
            elif isinstance(event, RunFinished):
                print(f"run finished: {event.reason} after {event.steps} steps {event.error or ''}")
    finally:
        await engine.aclose()
    reqs = engine.requests
    # A request right after a compaction re-prefills the compacted history: its new tokens
    # (and the summary requests') are the compaction's cost; the rest is what steps add.
    after = [b for a, b in itertools.pairwise(reqs) if a.after_compaction and b.kind == "step"]
    summaries = [r for r in reqs if r.kind == "summary"]
    prompt = sum(len(r.prompt_ids) for r in reqs)
    cached = sum(r.cached for r in reqs)
    reusable = sum(r.reusable for r in reqs)
    compaction_new = sum(len(r.prompt_ids) - r.reusable for r in (*after, *summaries))
    step_new = prompt - reusable - compaction_new
    breaks = sum(1 for a, b in itertools.pairwise(reqs) if b.cached < len(a.prompt_ids) - 64)
    n_steps = len(reqs) - len(summaries)
    print(
        f"workload: {n_steps} steps, {calls} tool calls ({calls / max(n_steps, 1):.1f} per step), "
        f"tool output {statistics.mean(outputs or [0]):.0f} tokens on average, "
        f"{statistics.mean(len(r.generated) for r in reqs):.0f} generated tokens per request"
    )
    figures = RunFigures(
        max_model_len,
        prompt,
        cached,
        reusable,
        compaction_new,
        step_new,
        sum(1 for e in compactions if e.tier != "clip_tool_outputs"),
        breaks,
        n_steps,
    )
    report(figures, summaries)
    return figures


def report(f: RunFigures, summaries: Sequence[Request] = ()) -> None:
    pct = 100 / f.prompt if f.prompt else 0.0
    missed = f.prompt - f.cached
    rounding = f.reusable - f.cached
    print(
        f"max_model_len {f.max_model_len}: prompt tokens {f.prompt}, served from the prefix "
        f"cache {f.cached}: {f.cached * pct:.1f} % (goal >= 90 %); token-exact reuse would "
        f"serve {f.reusable * pct:.1f} %"
    )
    print(
        f"  missed {missed} = new step content {f.step_new} ({f.step_new * pct:.1f} %: tool "
        f"output, turn markup) + compaction {f.compaction_new} ({f.compaction_new * pct:.1f} %: "
        f"re-prefill after it, summary requests) + block rounding {rounding} "
        f"({rounding * pct:.1f} %: the engine caches whole blocks)"
    )
    if summaries:
        print(
            f"  summary requests: {len(summaries)}, each reused "
            + ", ".join(f"{r.reusable}/{len(r.prompt_ids)}" for r in summaries)
            + " prompt tokens (an append to the live conversation)"
        )
    print(
        f"  cache breaks {f.breaks}, compactions {f.compactions} "
        "(goal: at most one break per compaction)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-engine", action="store_true")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-model-len", type=int, nargs="+", default=[4096, 8192])
    # Tool output per step, in lines (~25 tiny-tokenizer tokens each). Scaled to the 4K context
    # like ~500-token outputs in a 128K one; larger outputs mean more new tokens per step.
    parser.add_argument("--output-lines", type=int, default=2)
    # vLLM's prefix_cache_retention_interval; VLLMEngine keeps sliding-window blocks densely
    # (None). 0 is vLLM's own default (a prompt's end only), to compare.
    parser.add_argument("--retention-interval", type=int, default=None)
    parser.add_argument("--keep-fraction", type=float, default=None)
    # The chain's trigger (default 0.8, 0.75 after big steps); 0.75 here is the old fixed one.
    parser.add_argument("--trigger", type=float, default=None)
    # KV block size; by default the engine's (32 on CPU: 64-token cache hits with Gemma 4).
    parser.add_argument("--block-size", type=int, default=None)
    args = parser.parse_args(argv)
    asyncio.run(time_compaction(args.turns, args.repeat))
    if args.no_engine:
        return
    runs = []
    for length in args.max_model_len:
        figures = asyncio.run(
            engine_run(
                args.steps,
                length,
                args.output_lines,
                args.retention_interval,
                args.keep_fraction,
                args.trigger,
                args.block_size,
            )
        )
        if figures is not None:
            runs.append(figures)
    if len(runs) > 1:
        print("\n== summary")
        for f in runs:
            report(f)


if __name__ == "__main__":
    main()
