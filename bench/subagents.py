"""Sub-agents on one engine: four `explore` children at once vs one after another.

A parent (``Agent(subagents=...)``) makes four ``task`` calls in its first turn; they run through
the real task tool as built-in ``explore`` children on the embedded CPU vLLM engine with the
tiny random model and its product defaults (KV blocks of 32 tokens on CPU). The parent's own two
turns are scripted (the task calls, then its final answer): only the children's requests reach
the engine. The tool choice is forced to one argument-free read-only tool (``survey``, a fixed
~300-token listing), so every child step is a grammar-constrained call that really runs, greedy
with a fixed seed: both runs do the same work, token for token (checked). Each run starts from
an empty prefix cache.

Prints the wall time of the parent's run with ``max_subagents=1`` (one child after another) and
with ``max_subagents=4`` (all at once, batched by the engine), the fastest of --rounds runs of
each (alternating: on a shared 2-core machine other processes' load inflates the sequential run,
which waits on the engine at every token, more than the batched one), and their ratio (goal
<= 0.5); then per child the prompt tokens of its first request, how many came from the prefix
cache, and the share of its system turn (instructions + tool declarations, whose end is the
first ``<turn|>`` of the rendered prompt) served from the cache. Goal: >= 90 % for every child
after the first.

    .venv/bin/python bench/subagents.py [--children 4] [--steps 4] [--max-output-tokens 64]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

PARENT = "You are the parent agent. Delegate the searches."
LISTING = "\n".join(
    f"src/module_{i:02d}.py  {120 + 7 * i} lines  def handler_{i}(request): ..." for i in range(8)
)


@dataclasses.dataclass
class Exchange:
    prompt: tuple[int, ...]
    output: tuple[int, ...]
    started: float


class ParentScriptedEngine:
    """The parent's requests (its instructions are in the prompt) are answered from a script;
    the children's go to the real engine, recorded per child under the TASK-n tag of its prompt."""

    def __init__(self, real: Any, script: list[str]) -> None:
        from gemma_agent import ScriptedEngine

        self.real = real
        self.info = real.info
        self.tokenizer = real.tokenizer
        self.script = ScriptedEngine(
            script, tokenizer=real.tokenizer, variant=real.info.variant,
            max_model_len=real.info.max_model_len, supports_grammar=True,
        )  # fmt: skip
        self.children: dict[str, list[Exchange]] = {}
        self.in_flight = self.max_in_flight = 0

    def generate(self, request: Any) -> AsyncIterator[Any]:
        text = self.tokenizer.decode(list(request.prompt_ids))
        if PARENT in text:  # the task calls need more than a child's output budget
            return self.script.generate(dataclasses.replace(request, max_tokens=8192))
        found = re.search(r"TASK-(\d+)", text)
        assert found, text[-400:]
        return self._child(found.group(1), request)

    async def _child(self, tag: str, request: Any) -> AsyncIterator[Any]:
        ex = Exchange(tuple(request.prompt_ids), (), time.perf_counter())
        self.children.setdefault(tag, []).append(ex)
        out: list[int] = []
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async for delta in self.real.generate(request):
                out += delta.token_ids
                yield delta
        finally:
            self.in_flight -= 1
            ex.output = tuple(out)

    def count_tokens(self, text: str) -> int:
        return int(self.real.count_tokens(text))

    async def aclose(self) -> None:
        pass


@dataclasses.dataclass
class ChildFigures:
    tag: str
    order: int  # 1 = the first child to send a request
    prompt: int  # prompt tokens of its first request
    cached: int  # of which from the prefix cache
    system: int  # its system turn (instructions + tool declarations), in tokens
    requests: int
    generated: int
    reason: str


async def run_parent(
    engine: Any, workspace: Path, *, children: int, steps: int, max_output_tokens: int,
    concurrent: int,
) -> tuple[float, list[ChildFigures], dict[str, list[Exchange]], int]:  # fmt: skip
    from gemma_agent import Agent, ScriptedEngine, tool
    from gemma_agent.agent.subagents import EXPLORE
    from gemma_agent.events import RunFinished, SubagentEvent, ToolCallStarted, Usage
    from gemma_agent.prompts import tokens as T

    @tool(read_only=True)
    def survey() -> str:
        """List the source files of the project with their sizes."""
        return LISTING

    call = ScriptedEngine.tool_call
    tasks = [
        call("task", agent_type="explore", description=f"search area {n}",
             prompt=f"TASK-{n} Find where the handlers of area {n} are defined and report.")
        for n in range(1, children + 1)
    ]  # fmt: skip
    wrapped = ParentScriptedEngine(engine, ["".join(tasks), call("final_answer", answer="done")])
    explore = dataclasses.replace(EXPLORE, max_steps=steps)
    agent = Agent(
        engine=wrapped,  # type: ignore[arg-type]
        tools=[survey],
        instructions=PARENT,
        workspace=workspace,
        subagents=[explore],
        max_subagents=concurrent,
        tool_choice="survey",  # the children's: every step is one forced call of survey
        max_output_tokens=max_output_tokens,
        temperature=0.0,
        seed=0,
        compactor=None,
        persist=False,
        checkpoints=False,
    )
    await engine.reset_prefix_cache()
    t0 = time.perf_counter()
    events = [e async for e in agent.stream("Map the handlers of the project.")]
    wall = time.perf_counter() - t0
    fin = events[-1]
    assert isinstance(fin, RunFinished) and fin.output == "done", fin
    wrapped.script.assert_complete()
    tag_of = {
        e.call.id: re.findall(r"TASK-(\d+)", e.call.arguments["prompt"])[0]
        for e in events
        if isinstance(e, ToolCallStarted) and e.call.name == "task"
    }
    first_usage: dict[str, Usage] = {}
    ends: dict[str, RunFinished] = {}
    for e in events:
        if isinstance(e, SubagentEvent):
            tag = tag_of[e.call_id]
            if isinstance(e.event, Usage):
                first_usage.setdefault(tag, e.event)
            elif isinstance(e.event, RunFinished):
                ends[tag] = e.event
    turn_close = engine.tokenizer.control_id(T.TURN_CLOSE)
    by_start = sorted(wrapped.children, key=lambda t: wrapped.children[t][0].started)
    figures = []
    for order, tag in enumerate(by_start, 1):
        exchanges = wrapped.children[tag]
        usage, end = first_usage[tag], ends[tag]
        figures.append(
            ChildFigures(
                tag, order, usage.prompt_tokens, usage.cached_prompt_tokens,
                exchanges[0].prompt.index(turn_close) + 1, len(exchanges),
                end.usage.generated_tokens if end.usage else 0, end.reason,
            )
        )  # fmt: skip
    return wall, figures, wrapped.children, wrapped.max_in_flight


def common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4, help="max_steps of each explore child")
    ap.add_argument("--max-output-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each kind; the fastest is kept")
    args = ap.parse_args()

    from gemma_agent.agent.engines.tiny import tiny_model_path
    from gemma_agent.agent.engines.vllm import VLLMEngine, vllm_installed

    if not vllm_installed():
        print("(vLLM is not installed: nothing to measure; `make install`)")
        return
    t = time.perf_counter()
    engine = await VLLMEngine.start(
        tiny_model_path(), variant="tiny", name="tiny", max_model_len=16384, dtype="float32"
    )
    print(f"engine start: {time.perf_counter() - t:.1f} s (tiny model, CPU, product defaults)")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workspace = Path(tmp)
            opts = {"children": args.children, "steps": args.steps,
                    "max_output_tokens": args.max_output_tokens}  # fmt: skip
            await run_parent(engine, workspace, **{**opts, "children": 1}, concurrent=1)  # warm-up
            runs: dict[int, Any] = {}
            walls: dict[int, list[float]] = {1: [], args.children: []}
            for _ in range(args.rounds):  # alternating: a busy spell of a shared machine hits both
                for concurrent in (1, args.children):
                    result = await run_parent(engine, workspace, **opts, concurrent=concurrent)
                    walls[concurrent].append(result[0])
                    if concurrent not in runs or result[0] < runs[concurrent][0]:
                        runs[concurrent] = result
    finally:
        await engine.aclose()
    seq_wall, seq_figs, seq_ex, seq_flight = runs[1]
    con_wall, con_figs, con_ex, con_flight = runs[args.children]
    same = {t: [(e.prompt, e.output) for e in seq_ex[t]] for t in seq_ex} == {
        t: [(e.prompt, e.output) for e in con_ex[t]] for t in con_ex
    }
    firsts = [ex[0].prompt for ex in seq_ex.values()]
    shared = min(common_prefix(firsts[0], p) for p in firsts[1:]) if len(firsts) > 1 else 0
    requests = sum(f.requests for f in seq_figs)
    generated = sum(f.generated for f in seq_figs)
    print(
        f"{args.children} explore children, max_steps {args.steps}, max_output_tokens "
        f"{args.max_output_tokens}: {requests} requests, {generated} generated tokens per run; "
        f"children's requests token-identical in both runs: {'yes' if same else 'NO'}"
    )
    each = {k: ", ".join(f"{w:.1f}" for w in v) for k, v in walls.items()}
    print(
        f"one after another (max_subagents=1): {seq_wall:6.1f} s  (max in flight {seq_flight}; "
        f"runs: {each[1]} s)"
    )
    print(
        f"all at once (max_subagents={args.children}):     {con_wall:6.1f} s  "
        f"(max in flight {con_flight}; runs: {each[args.children]} s)"
    )
    ratio = con_wall / seq_wall
    print(f"wall-time ratio: {ratio:.2f} (goal <= 0.5: {'met' if ratio <= 0.5 else 'MISSED'})")
    print(
        f"\nfirst request of each child (system turn + tools: {seq_figs[0].system} tokens; the "
        f"children's first prompts share {shared})"
    )
    print(
        f"{'run':<16} {'child':>5} {'prompt':>7} {'cached':>7} {'system':>7} {'of system':>10}  end"
    )
    worst = 1.0
    for label, figs in (("one by one", seq_figs), ("all at once", con_figs)):
        for f in figs:
            share = min(f.cached, f.system) / f.system
            if f.order > 1:
                worst = min(worst, share)
            print(
                f"{label:<16} {f.order:>5} {f.prompt:>7} {f.cached:>7} {f.system:>7} "
                f"{share:>10.1%}  {f.reason} after {f.requests} requests"
            )
    print(
        f"later children: at least {worst:.1%} of the system turn from the prefix cache "
        f"(goal >= 90%: {'met' if worst >= 0.9 else 'MISSED'})"
    )


if __name__ == "__main__":
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on CPU
    asyncio.run(main())
