"""Agent-loop overhead per step: N sequential tool steps on ScriptedEngine with a no-op tool.

    .venv/bin/python bench/loop.py                  # N = 100 and 1000
    .venv/bin/python bench/loop.py --pydantic-ai-python /tmp/pai/bin/python

Prints µs/step for gemma-agent (sessions off, then on with fsync) and, side by side, the same
shape through pydantic-ai's FunctionModel when pydantic-ai is importable here or in the
interpreter given with --pydantic-ai-python (a throwaway venv; it is not a dependency),
and the same runs with OpenTelemetry tracing on (SDK providers, spans dropped by the exporter).
Goals: ≤ 1 ms/step at N = 1000, and N = 1000 within 1.5x of N = 100 (flat: the history is
appended to, never re-rendered or re-tokenized).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time


def otel_tracing() -> object:
    """OpenTelemetry on, as `--otel` sets it up (SDK providers, batch span processor, a
    metric reader), with an exporter that drops the spans: the cost measured is ours and the
    SDK's, not a collector's."""
    from gemma_agent.agent import Tracing
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return Tracing(tracer_provider=provider, meter_provider=MeterProvider([InMemoryMetricReader()]))


async def gemma_agent_step_us(
    n: int, *, persist: bool, compactor: bool, fsync: bool = True, otel: bool = False
) -> float:
    from gemma_agent import Agent, ScriptedEngine, tool

    @tool
    async def noop(i: int) -> str:
        """Do nothing."""
        return "ok"

    outputs: list[str | object] = [f"<|tool_call>call:noop{{i:{i}}}<tool_call|>" for i in range(n)]
    outputs.append("done")
    engine = ScriptedEngine(outputs, chunk_tokens=64, max_model_len=50_000_000)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {} if compactor else {"compactor": None}
        agent = Agent(
            engine=engine,
            tools=[noop],
            workspace=tmp,
            persist=persist,
            fsync=fsync,
            max_steps=n + 1,
            max_output_tokens=256,
            checkpoints=False,  # the loop's own cost (snapshots: bench/checkpoint.py)
            tracing=otel_tracing() if otel else False,  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        t0 = time.perf_counter()
        result = await agent.run("Call noop with i = 0, 1, 2, ... then say done.")
        elapsed = time.perf_counter() - t0
        await agent.aclose()
    assert result.output == "done" and result.steps == n + 1, (result.reason, result.error)
    return elapsed / (n + 1) * 1e6


PYDANTIC_AI = """
import asyncio, json, sys, time
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

def run(n):
    state = {"i": 0}
    def model(messages, info: AgentInfo):
        i = state["i"]
        state["i"] += 1
        if i < n:
            return ModelResponse(parts=[ToolCallPart("noop", {"i": i})])
        return ModelResponse(parts=[TextPart("done")])
    agent = Agent(FunctionModel(model))
    @agent.tool_plain
    async def noop(i: int) -> str:
        return "ok"
    t0 = time.perf_counter()
    try:
        from pydantic_ai.usage import UsageLimits
        result = agent.run_sync("go", usage_limits=UsageLimits(request_limit=n + 10))
    except ImportError:
        result = agent.run_sync("go")
    out = getattr(result, "output", None) or getattr(result, "data", None)
    assert out == "done"
    return (time.perf_counter() - t0) / (n + 1) * 1e6

print(json.dumps({str(n): run(n) for n in map(int, sys.argv[1:])}))
"""


def pydantic_ai_step_us(ns: list[int], python: str | None) -> dict[int, float] | str:
    exe = python or sys.executable
    try:
        proc = subprocess.run(
            [exe, "-c", PYDANTIC_AI, *map(str, ns)], capture_output=True, text=True, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"not run ({e})"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"not available ({last})"
    return {int(k): v for k, v in json.loads(proc.stdout).items()}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--pydantic-ai-python", default=None, help="interpreter with pydantic-ai")
    p.add_argument("--skip-pydantic-ai", action="store_true")
    p.add_argument("--skip-otel", action="store_true", help="no OpenTelemetry rows")
    args = p.parse_args()
    ns: list[int] = args.n
    rows: dict[str, dict[int, float] | str] = {}
    configs = [
        ("gemma-agent (no session log, no compactor)", False, False, False, False),
        ("gemma-agent (session log, no fsync, default compactor)", True, False, True, False),
        ("gemma-agent (session log + fsync, default compactor)", True, True, True, False),
    ]
    if not args.skip_otel:
        configs += [
            ("gemma-agent (no session log, no compactor) + OpenTelemetry", False, False, False, True),
            ("gemma-agent (session log + fsync, default compactor) + OpenTelemetry", True, True, True, True),
        ]  # fmt: skip
    for label, persist, fsync, compactor, otel in configs:
        rows[label] = {}
        for n in ns:
            kw = {"persist": persist, "fsync": fsync, "compactor": compactor, "otel": otel}
            asyncio.run(gemma_agent_step_us(min(n, 20), **kw))  # warm-up (imports, caches)
            rows[label][n] = asyncio.run(gemma_agent_step_us(n, **kw))  # type: ignore[index]
    if not args.skip_pydantic_ai:
        rows["pydantic-ai FunctionModel"] = pydantic_ai_step_us(ns, args.pydantic_ai_python)
    width = max(len(k) for k in rows)
    print(
        f"{'loop overhead per step (µs)':<{width}}  "
        + "  ".join(f"N={n:>6}" for n in ns)
        + "  ratio"
    )
    for label, values in rows.items():
        if isinstance(values, str):
            print(f"{label:<{width}}  {values}")
            continue
        cells = "  ".join(f"{values[n]:>8.0f}" for n in ns)
        ratio = values[ns[-1]] / values[ns[0]] if len(ns) > 1 else 1.0
        print(f"{label:<{width}}  {cells}  {ratio:5.2f}x")
    base = rows["gemma-agent (no session log, no compactor)"]
    assert isinstance(base, dict)
    for label in [k for k in rows if k.endswith(" + OpenTelemetry")]:
        on, off = rows[label], rows[label.removesuffix(" + OpenTelemetry")]
        assert isinstance(on, dict) and isinstance(off, dict)
        extra = on[ns[-1]] / off[ns[-1]] - 1
        print(
            f"OpenTelemetry on, {label.split('(')[1].split(')')[0]}: {extra:+.0%} per step at "
            f"N={ns[-1]} (goal ≤ +20%: {'met' if extra <= 0.2 else 'MISSED'})"
        )
    worst = base[ns[-1]]
    print(
        f"goals: ≤ 1000 µs/step at N={ns[-1]}: {'met' if worst <= 1000 else 'MISSED'}; "
        f"flat (≤ 1.5x): {'met' if len(ns) < 2 or worst <= 1.5 * base[ns[0]] else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
