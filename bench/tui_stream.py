"""Streaming through the TUI: event-loop latency and cost per token in a long transcript.

Streams N tokens (default 20,000) at ~1,000 tokens/s into a headless GemmaApp whose transcript
already holds a long conversation, as steps of thinking + Markdown answer (with code) + a tool
call. Reports the event loop's lateness (p50/p99 of a 10 ms ticker; goal p99 < 50 ms) and the
CPU cost per token in the window at 1k tokens and at 20k tokens: if the cost per token does not
grow, the UI is not re-rendering finished blocks.

    .venv/bin/python bench/tui_stream.py [--tokens 20000] [--rate 1000] [--history 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator

from gemma_agent.agent.events import (
    Event,
    RunFinished,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
)
from gemma_agent.agent.messages import ModelTurn, ToolCall, ToolResult, UserMessage
from gemma_agent.tui.app import GemmaApp

WORDS = [
    "the",
    "model",
    "reads",
    "the",
    "file",
    "and",
    "then",
    "decides",
    "which",
    "function",
    "to",
    "change",
    "so",
    "that",
    "the",
    "tests",
    "pass",
    "without",
    "breaking",
    "the",
    "public",
    "interface",
    "of",
    "the",
    "package",
]
CODE = "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```\n\n"


def answer_tokens(step: int, n: int) -> list[str]:
    """Markdown tokens: paragraphs, a list, a code block."""
    out: list[str] = [f"## Step {step}\n\n"]
    i = 0
    while len(out) < n:
        if i % 60 == 59:
            out.append("\n\n")
        elif i % 150 == 100:
            out.extend(CODE.split(" "))
        elif i % 90 == 45:
            out.append("\n\n- item ")
        else:
            out.append(WORDS[i % len(WORDS)] + " ")
        i += 1
    return out[:n]


def thinking_tokens(n: int) -> list[str]:
    return [WORDS[i % len(WORDS)] + ("\n" if i % 25 == 24 else " ") for i in range(n)]


class BenchBackend:
    model = "bench"
    variant = "E4B"
    thinking = True
    thinking_budget: int | None = None
    approval = "auto"
    max_steps = 1000
    session_id: str | None = None

    def __init__(
        self, tokens: int, rate: float, marks: dict[int, float], past: list[object] | None = None
    ) -> None:
        self.past = past or []
        self.tokens = tokens
        self.rate = rate
        self.marks = marks  # token count -> process CPU time when reached
        self.sent = 0

    async def stream(self, task: str) -> AsyncIterator[Event]:
        yield RunStarted(session_id="bench", task=task, model="bench")
        start = time.perf_counter()
        step = 0
        while self.sent < self.tokens:
            step += 1
            plan: list[tuple[str, str]] = [("think", t) for t in thinking_tokens(300)]
            plan += [("text", t) for t in answer_tokens(step, 650)]
            for kind, text in plan:
                if self.sent >= self.tokens:
                    break
                self.sent += 1
                if self.sent % 500 == 0:
                    self.marks[self.sent] = time.process_time()
                yield ThinkingDelta(text, step) if kind == "think" else TextDelta(text, step)
                # Pace to the rate; a late producer catches up in bursts (like engine chunks).
                ahead = start + self.sent / self.rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            call = ToolCall(id=f"c{step}", name="read_file", arguments={"path": f"src/m{step}.py"})
            yield ToolCallStarted(call, step)
            await asyncio.sleep(0)
            result = ToolResult(call_id=call.id, name=call.name, content="x = 1\n" * 30)
            yield ToolCallFinished(call, result, step, 0.01)
            yield Usage(step, 1000 * step, 900 * step, 950, 300, 1000.0, 1000 * step, 32768)
            yield TurnFinished(ModelTurn(text="", tool_calls=(call,), tool_results=(result,)), step)
        yield RunFinished("final_answer", output="", steps=step)

    def new_session(self) -> None: ...
    def resume(self, session_id: str) -> list[object]:
        return self.past

    async def compact(self, focus: str | None) -> None:
        return None

    async def undo_compaction(self) -> bool:
        return False

    def set_thinking(self, on: bool, budget: int | None) -> None: ...
    def set_approval(self, mode: str) -> None: ...
    def tool_list(self) -> list[tuple[str, str]]:
        return []

    def sessions(self) -> list[object]:
        return []

    def session_file(self) -> str | None:
        return None

    def session_model(self) -> tuple[str, str | None] | None:
        return None

    def describe(self) -> str:
        return "bench"

    engine_info = None

    def file_before(self, call_id: str) -> None:
        return None

    async def aclose(self) -> None: ...


def history(n: int) -> list[object]:
    """A long earlier conversation to render before streaming."""
    out: list[object] = []
    for i in range(n):
        out.append(UserMessage(content=f"question {i}: " + " ".join(WORDS)))
        call = ToolCall(id=f"h{i}", name="grep", arguments={"pattern": "def ", "path": "."})
        res = ToolResult(call_id=call.id, name="grep", content="a.py:1: def f()\n" * 5)
        out.append(
            ModelTurn(
                reasoning="thinking about it\n" * 5,
                text="".join(answer_tokens(i, 120)),
                tool_calls=(call,),
                tool_results=(res,),
            )
        )
    return out


async def bench(tokens: int, rate: float, history_turns: int) -> None:
    marks: dict[int, float] = {}
    backend = BenchBackend(tokens, rate, marks, history(history_turns))
    app = GemmaApp(backend=backend)  # type: ignore[arg-type]
    lateness: list[float] = []
    stalls: list[tuple[float, float]] = []
    work: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        # Resume a long session, as /resume does; time until it is on screen.
        t0 = time.perf_counter()
        app.resume_session("bench")
        t1 = time.perf_counter()
        await pilot.pause()
        t2 = time.perf_counter()
        blocks = len(app.blocks())
        print(
            f"resume: {history_turns} turns, {blocks} blocks; {app.archive.rendered_count} "
            f"rendered; {1000 * (t1 - t0):.0f} ms to build, on screen after "
            f"{1000 * (t2 - t0):.0f} ms"
        )
        await pilot.pause(1.0)  # the app's garbage collection after a load

        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                t, c = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.01)
                late = time.perf_counter() - t - 0.01
                lateness.append(late)
                # The loop's own work in this tick: on a machine with a free core this, not the
                # wall time above, is how late the tick is (sleeping costs no CPU).
                work.append(max(0.0, time.thread_time() - c - 0.01))
                if late > 0.05:
                    # CPU this thread spent during the stall: ours, or descheduled by the OS?
                    stalls.append((late, time.thread_time() - c))

        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        cpu0 = time.process_time()
        app.start_run("bench")
        assert app.run_worker_ is not None
        await app.run_worker_.wait()
        await pilot.pause(0.2)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        stop.set()
        await tick
        blocks_after = len(app.blocks())

    lat = sorted(lateness)
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    print(
        f"streamed {tokens} tokens in {wall:.1f} s ({tokens / wall:.0f} tokens/s, target {rate:.0f})"
    )
    print(f"transcript blocks: {blocks} before, {blocks_after} after")
    print(
        f"event-loop lateness: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms "
        f"(goal p99 < 50 ms)"
    )
    w = sorted(work)
    print(
        f"lateness from the loop's own CPU work (contention-free estimate): "
        f"p50 {statistics.median(w) * 1000:.1f} ms, p99 {w[int(len(w) * 0.99) - 1] * 1000:.1f} ms, "
        f"max {w[-1] * 1000:.1f} ms"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if stalls:
        own = sum(c for _, c in stalls) / sum(w for w, _ in stalls)
        print(
            f"stalls over 50 ms: {len(stalls)} of {len(lat)} ticks; the UI thread was on CPU "
            f"{100 * own:.0f}% of their time (the rest: waiting for a CPU)"
        )
    print(f"CPU: {cpu:.1f} s total, {1e6 * cpu / tokens:.0f} µs per token overall")

    def per_token(begin: int, end: int) -> float:
        return (marks[end] - marks[begin]) / (end - begin)

    # 2,000-token windows (a frame paints ~50 tokens; shorter windows are noisy).
    first, last = min(marks), max(marks)
    span = max(500, min(2000, (last - first) // 2 // 500 * 500))
    if last - first >= span:
        print(
            f"CPU per token: {1e6 * per_token(first, first + span):.0f} µs over tokens "
            f"{first:,}-{first + span:,}, {1e6 * per_token(last - span, last):.0f} µs over "
            f"{last - span:,}-{last:,}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=20_000)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--history", type=int, default=200, help="earlier turns in the transcript")
    a = p.parse_args()
    asyncio.run(bench(a.tokens, a.rate, a.history))


if __name__ == "__main__":
    main()
