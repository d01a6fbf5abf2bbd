"""`gemma-agent eval-compare` on two real eval runs: the oracle against a broken solver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gemma_agent.cli import main
from gemma_agent.errors import ConfigError
from gemma_agent.evals.compare import TaskOutcome, bootstrap_ci, compare, sign_test
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite, select_tasks
from gemma_agent.evals.solvers import OracleSolver, SolveOutcome
from gemma_agent.evals.tasks import Task
from gemma_agent.evals.workspace import Workspace

from .helpers import adder_suite


class SolvesEvenTasks(OracleSolver):
    """Broken on the odd-numbered tasks: leaves them as they are."""

    name = "half"

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        if int(task.id.rsplit("-", 1)[1]) % 2 == 0:
            return await super().solve(task, workspace, run_id=run_id)
        return SolveOutcome(steps=3)


async def eval_run(root: Path, solver: object, out: Path, n: int = 8) -> Path:
    suite = load_suite(str(adder_suite(root, n)))
    opts = EvalOptions(output=out, progress=False)
    await run_suite(suite, select_tasks(suite), solver, opts, {"suite": suite.name})  # type: ignore[arg-type]
    return out


def test_sign_test_is_exact() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(1, 1) == 1.0
    assert sign_test(0, 8) == pytest.approx(2 / 256)
    assert sign_test(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)


def test_bootstrap_interval_holds_the_estimate() -> None:
    outcomes = [TaskOutcome(1, i % 2) for i in range(40)]
    lo, hi = bootstrap_ci(outcomes, 1)
    assert lo < 0.5 < hi and hi - lo < 0.4
    assert bootstrap_ci([TaskOutcome(3, 3)] * 5, 1) == (1.0, 1.0)


async def test_oracle_against_a_broken_solver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = await eval_run(tmp_path / "s", OracleSolver(), tmp_path / "oracle")
    b = await eval_run(tmp_path / "s2", SolvesEvenTasks(), tmp_path / "half")
    result = compare(a, b)
    runs, paired = result["runs"], result["paired"]
    assert runs["a"]["pass_at_k"]["1"] == {"value": 1.0, "ci95": (1.0, 1.0)}
    half = runs["b"]["pass_at_k"]["1"]
    assert half["value"] == 0.5 and half["ci95"][0] < 0.5 < half["ci95"][1]
    assert paired["tasks"] == 8 and paired["b_worse"] == 4 and paired["b_better"] == 0
    assert paired["p_value"] == pytest.approx(2 / 16)  # 4 discordant tasks, all one way
    assert paired["difference"] == -0.5
    lo, hi = paired["difference_ci95"]
    assert lo < -0.5 < hi <= 0
    assert {c["task"] for c in paired["changes"]} == {f"add-{i:02d}" for i in (1, 3, 5, 7)}
    assert all(c["change"] == "broken" for c in paired["changes"])
    assert paired["cost_difference"]["mean_steps"] == pytest.approx(1.5)

    out = tmp_path / "cmp"
    assert main(["eval-compare", str(a), str(b), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "No significant difference (p = 0.125" in printed
    assert "| pass@1 | 100.0% [100.0%, 100.0%] | 50.0% [" in printed
    assert "| add-01 | 1/1 | 0/1 | broken |" in printed
    md = (out / "compare.md").read_text()
    assert md in printed
    page = (out / "compare.html").read_text()
    assert "<svg" in page and "<table>" in page and "add-07" in page
    assert json.loads((out / "compare.json").read_text())["paired"]["b_worse"] == 4


async def test_all_broken_is_significant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Nothing(OracleSolver):
        async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
            return SolveOutcome()

    a = await eval_run(tmp_path / "s", OracleSolver(), tmp_path / "a")
    b = await eval_run(tmp_path / "s2", Nothing(), tmp_path / "b")
    assert main(["eval-compare", str(b), str(a)]) == 0
    assert "B beats A (p = 0.00781" in capsys.readouterr().out


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no results\.jsonl"):
        compare(tmp_path, tmp_path)
