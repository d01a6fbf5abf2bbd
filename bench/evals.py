"""Eval runner throughput: 32 HumanEval tasks, a ScriptedEngine that sleeps to simulate model
latency, at concurrency 1, 4 and 8. Real agent loop, tools, workspaces and sandboxed grading.

    .venv/bin/python bench/evals.py [--tasks 32] [--latency 0.5] [--concurrency 1,4,8]

Goal: throughput at concurrency 8 >= 6x concurrency 1 (one shared engine, many tasks at once).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from gemma_agent import ScriptedEngine
from gemma_agent.agent.engines.base import EngineDelta, EngineRequest
from gemma_agent.agent.engines.scripted import ScriptedRequest
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite
from gemma_agent.evals.solvers import AgentSolver
from gemma_agent.evals.tasks import Suite

Q = '<|"|>'


class SlowEngine(ScriptedEngine):
    """A ScriptedEngine whose every request waits `latency` seconds before its first token,
    like a real engine's time to first token under load."""

    def __init__(self, *args: object, latency: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.latency = latency

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        await asyncio.sleep(self.latency)
        async for delta in super().generate(request):
            yield delta


def solver_script(suite: Suite):
    """Answers any request of any task: write the reference solution, then finish."""
    solutions = {}
    for task in suite.tasks:
        entry = re.search(r"Implement `(\w+)`", task.instruction)
        assert entry is not None
        solutions[entry.group(1)] = task.solution_files["solution.py"].decode()

    def respond(request: ScriptedRequest) -> str:
        text = request.prompt_text
        if "<|tool_response>" in text:
            return "Done: the function is implemented."
        entry = re.search(r"Implement `(\w+)`", text)
        assert entry is not None
        code = solutions[entry.group(1)]
        return f"<|tool_call>call:write_file{{content:{Q}{code}{Q},path:{Q}solution.py{Q}}}<tool_call|>"

    return respond


async def measure(
    suite: Suite, concurrency: int, latency: float, token_delay: float
) -> tuple[float, int]:
    engine = SlowEngine(
        [solver_script(suite)] * (2 * len(suite.tasks)),
        latency=latency,
        token_delay=token_delay,
        chunk_tokens=16,
    )
    with tempfile.TemporaryDirectory(prefix="bench-evals-") as tmp:
        out = Path(tmp)
        solver = AgentSolver(engine, trajectories=out / "trajectories")
        options = EvalOptions(output=out, concurrency=concurrency, progress=False)
        start = time.perf_counter()
        summary = await run_suite(suite, list(suite.tasks), solver, options, {"suite": suite.name})
        seconds = time.perf_counter() - start
    engine.assert_complete()
    return seconds, summary["passed"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per request")
    parser.add_argument("--token-delay", type=float, default=0.0002, help="seconds per token")
    parser.add_argument("--concurrency", default="1,4,8")
    args = parser.parse_args()
    full = load_suite("humaneval")
    suite = Suite("humaneval", full.tasks[: args.tasks])
    levels = [int(c) for c in args.concurrency.split(",")]
    print(
        f"eval runner: {len(suite.tasks)} HumanEval tasks, 2 model requests each, "
        f"{args.latency:g} s latency + {args.token_delay * 1000:g} ms/token"
    )
    print(f"{'concurrency':>11} {'seconds':>8} {'tasks/s':>8} {'speedup':>8} {'passed':>7}")
    base = None
    for c in levels:
        seconds, passed = await measure(suite, c, args.latency, args.token_delay)
        rate = len(suite.tasks) / seconds
        base = base or rate
        print(
            f"{c:>11} {seconds:>8.2f} {rate:>8.2f} {rate / base:>7.2f}x {passed:>4}/{len(suite.tasks)}"
        )
    if 1 in levels and 8 in levels:
        print("goal: throughput at 8 >= 6x at 1")


if __name__ == "__main__":
    asyncio.run(main())
