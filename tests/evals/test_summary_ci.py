"""The eval summary's 95% bootstrap intervals for pass@k, on a real eval run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gemma_agent.evals.compare import compare
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.metrics import bootstrap_ci, task_outcomes
from gemma_agent.evals.results import read_results
from gemma_agent.evals.runner import EvalOptions, run_suite, select_tasks
from gemma_agent.evals.solvers import OracleSolver, SolveOutcome
from gemma_agent.evals.tasks import Task
from gemma_agent.evals.workspace import Workspace

from .helpers import adder_suite


class FlakySolver(OracleSolver):
    """Solves the even-numbered tasks always, task add-01 on its first sample only, and leaves
    the other odd ones as they are."""

    name = "flaky"

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        number = int(task.id.rsplit("-", 1)[1])
        if number % 2 == 0 or (number == 1 and run_id.endswith("-s0")):
            return await super().solve(task, workspace, run_id=run_id)
        return SolveOutcome(steps=2)


async def test_summary_and_report_show_intervals(tmp_path: Path) -> None:
    suite = load_suite(str(adder_suite(tmp_path / "suite", 8)))
    out = tmp_path / "run"
    opts = EvalOptions(output=out, samples=2, progress=False)
    summary = await run_suite(suite, select_tasks(suite), FlakySolver(), opts, {"suite": "adders"})  # type: ignore[arg-type]

    # 4 tasks always pass, add-01 passes 1 of 2, 3 never: pass@1 = 4.5/8, pass@2 = 5/8.
    assert summary["pass_at_k"] == {"1": 0.5625, "2": 0.625}
    on_disk = json.loads((out / "summary.json").read_text())
    intervals = on_disk["pass_at_k_ci95"]
    assert set(intervals) == {"1", "2"}
    for k, value in on_disk["pass_at_k"].items():
        lo, hi = intervals[k]
        assert 0.0 <= lo < value < hi <= 1.0
        assert hi - lo < 0.8  # 8 tasks: wide, but an interval
    # The same helper (and seed) as eval-compare: the two agree on the same run.
    outcomes = list(task_outcomes(read_results(out / "results.jsonl")).values())
    assert intervals["1"] == [round(x, 6) for x in bootstrap_ci(outcomes, 1)]
    compared = compare(out, out)["runs"]["a"]["pass_at_k"]["1"]["ci95"]
    assert intervals["1"] == pytest.approx(list(compared))

    report = (out / "report.md").read_text()
    lo, hi = intervals["1"]
    assert f"| pass@1 | 56.25% (95% CI {lo:.2%} to {hi:.2%}) |" in report
    assert "| pass@2 | 62.50% (95% CI " in report
    assert "95% CI" in (out / "report.html").read_text()


async def test_a_perfect_run_has_a_point_interval(tmp_path: Path) -> None:
    suite = load_suite(str(adder_suite(tmp_path / "suite", 3)))
    out = tmp_path / "run"
    opts = EvalOptions(output=out, progress=False)
    summary = await run_suite(suite, select_tasks(suite), OracleSolver(), opts, {"suite": "a"})  # type: ignore[arg-type]
    assert summary["pass_at_k"] == {"1": 1.0}
    assert summary["pass_at_k_ci95"] == {"1": [1.0, 1.0]}
    assert "| pass@1 | 100.00% (95% CI 100.00% to 100.00%) |" in (out / "report.md").read_text()
