"""Synthetic coding-agent sessions for the compaction tests and the benchmark.

A deterministic generator of model steps (read_file with large outputs, test runs, edits, grep,
plan updates, tool errors) plus the ground truth of what happened, so tests can assert that
computed facts survive every compaction. `approx_tokens` is a chars/4 counter for tests where
exactness does not matter (bench/compaction.py counts exactly, with the model layer).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gemma_agent.agent.messages import (
    Message,
    ModelTurn,
    SummaryMessage,
    ToolCall,
    ToolResult,
    UserMessage,
)

SYSTEM_OVERHEAD = 2_000  # chars: instructions + tool declarations


def render_text(history: Sequence[Message]) -> str:
    parts = ["S" * SYSTEM_OVERHEAD]
    for m in history:
        if isinstance(m, UserMessage | SummaryMessage):
            parts.append(f"<|turn>user\n{m.content}<turn|>\n")
        else:
            parts.append(f"<|turn>model\n{m.reasoning or ''}{m.text}")
            for c in m.tool_calls:
                parts.append(f"<|tool_call>call:{c.name}{json.dumps(c.arguments)}<tool_call|>")
            for r in m.tool_results:
                parts.append(f"<|tool_response>{r.name}{json.dumps(r.content)}<tool_response|>")
            parts.append("<turn|>\n")
    return "".join(parts)


def approx_tokens(history: Sequence[Message]) -> int:
    return len(render_text(history)) // 4


FILES = [f"src/pkg/mod_{i}.py" for i in range(14)]
TEST_COMMANDS = ["pytest -q", "pytest tests/test_core.py -q", "python -m pytest -x"]


@dataclass
class Truth:
    """What really happened in the session, for the assertions."""

    tool_calls: Counter[str] = field(default_factory=Counter)
    files_changed: set[str] = field(default_factory=set)
    last_test: tuple[str, bool] | None = None
    plan: list[list[str]] | None = None


def _file_text(rng: random.Random, path: str, lines: int) -> str:
    return "\n".join(
        f"{n:4d}  def f_{n}(x): return x * {rng.randint(1, 99)}  # {path}" for n in range(lines)
    )


def make_step(rng: random.Random, step: int, truth: Truth, *, big: int = 400) -> ModelTurn:
    """One model step with one or two calls and their results."""
    calls: list[ToolCall] = []
    results: list[ToolResult] = []

    def add(name: str, args: dict[str, Any], content: Any, is_error: bool = False) -> None:
        call = ToolCall(id=f"call_{step}_{len(calls)}", name=name, arguments=args)
        calls.append(call)
        results.append(ToolResult(call_id=call.id, name=name, content=content, is_error=is_error))
        truth.tool_calls[name] += 1

    for _ in range(rng.choice((1, 1, 2))):
        roll = rng.random()
        path = rng.choice(FILES)
        if step % 25 == 0:
            items = [
                {"text": f"stage {k}", "status": "done" if k < step // 25 else "pending"}
                for k in range(1, 5)
            ]
            add("update_plan", {"items": items}, "plan updated")
            truth.plan = [[i["text"], i["status"]] for i in items]
        elif roll < 0.45:
            add("read_file", {"path": path}, _file_text(rng, path, rng.randint(20, big)))
        elif roll < 0.6:
            command = rng.choice(TEST_COMMANDS)
            ok = rng.random() < 0.4
            summary = "12 passed in 0.8s" if ok else "2 failed, 10 passed in 0.9s"
            out = "\n".join(f"tests/test_{k}.py ....F" for k in range(rng.randint(5, 60)))
            add(
                "run_shell",
                {"command": command},
                {"exit_code": 0 if ok else 1, "stdout": f"{out}\n{summary}", "stderr": ""},
            )
            truth.last_test = (command, ok)
        elif roll < 0.75:
            add("write_file", {"path": path, "content": "x = 1\n" * 20}, "ok")
            truth.files_changed.add(path)
        elif roll < 0.9:
            matches = "\n".join(
                f"{rng.choice(FILES)}:{k}: foo()" for k in range(rng.randint(3, 80))
            )
            add("grep", {"pattern": "foo\\(", "path": "src"}, matches)
        else:
            add("read_file", {"path": "missing.py"}, "no such file: missing.py", is_error=True)
    return ModelTurn(
        id=f"t_{step}",
        reasoning=None,
        text="" if rng.random() < 0.7 else f"Step {step}: looking further.",
        tool_calls=tuple(calls),
        tool_results=tuple(results),
    )


class FakeSummarizer:
    """Stands in for the model's summary call (a real model needs weights); records calls."""

    def __init__(self) -> None:
        self.instructions: list[str] = []

    async def __call__(self, instruction: str) -> str:
        self.instructions.append(instruction)
        n = len(self.instructions)
        return (
            f"Task: fix the failing tests (summary #{n}).\n"
            "Plan state: stage 2 in progress.\n"
            "Files read / changed: src/pkg/mod_1.py (core logic).\n"
            "Decisions: keep the public API.\n"
            "Errors seen: missing.py does not exist.\n"
            "Open questions / next steps: rerun pytest."
        )


def visible_tool_counts(history: Sequence[Message]) -> Counter[str]:
    """Calls visible verbatim plus the counts carried by summaries' computed facts."""
    counts: Counter[str] = Counter()
    for m in history:
        if isinstance(m, ModelTurn):
            counts.update(c.name for c in m.tool_calls)
        elif isinstance(m, SummaryMessage):
            for name, (n, _errors) in m.facts.get("tools", {}).items():
                counts[name] += n
    return counts
