"""Small suites written on the fly for the eval tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from gemma_agent.evals.solvers import SolveOutcome
from gemma_agent.evals.tasks import Task
from gemma_agent.evals.workspace import Workspace


def write_task(
    root: Path,
    name: str,
    *,
    repo: dict[str, str],
    tests: dict[str, str],
    solution: dict[str, str] | None = None,
    category: str = "general",
    extra_toml: str = "",
) -> Path:
    folder = root / name
    for base, files in (("repo", repo), ("tests", tests), ("solution", solution or {})):
        for rel, text in files.items():
            p = folder / base / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text))
    (folder / "task.toml").write_text(
        f'category = "{category}"\ninstruction = "Make the tests pass."\n{extra_toml}'
    )
    return folder


def adder_suite(root: Path, n: int, *, test_body: str = "") -> Path:
    """n tasks: implement add(a, b); the hidden test may do extra work (test_body)."""
    for i in range(n):
        write_task(
            root,
            f"add-{i:02d}",
            category="even" if i % 2 == 0 else "odd",
            repo={"calc.py": "def add(a, b):\n    raise NotImplementedError\n"},
            tests={
                "test_calc.py": f"from calc import add\n\n\ndef test_add():\n{test_body}"
                f"    assert add({i}, 1) == {i + 1}\n"
            },
            solution={"calc.py": "def add(a, b):\n    return a + b\n"},
        )
    return root


def humaneval_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class NullSolver:
    """Leaves the workspace as the task gave it (an agent that changed nothing)."""

    name = "null"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        self.calls.append(run_id)
        return SolveOutcome()
