"""Every shipped suite scores 100% under --oracle; wrong or missing solutions score 0%."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite, select_tasks
from gemma_agent.evals.solvers import OracleSolver
from gemma_agent.evals.tasks import Suite

from .helpers import NullSolver, humaneval_jsonl


async def run(suite: Suite, solver, out: Path, **options) -> dict:
    opts = EvalOptions(output=out, progress=False, **options)
    return await run_suite(suite, select_tasks(suite), solver, opts, {"suite": suite.name})


@pytest.mark.slow
async def test_humaneval_oracle_scores_100(tmp_path: Path):
    summary = await run(load_suite("humaneval"), OracleSolver(), tmp_path, concurrency=8)
    assert (summary["total"], summary["passed"], summary["errors"]) == (164, 164, 0)
    assert summary["pass_at_k"] == {"1": 1.0}


async def test_repo_tasks_oracle_scores_100(tmp_path: Path):
    summary = await run(load_suite("repo-tasks"), OracleSolver(), tmp_path, concurrency=8)
    assert summary["total"] == summary["passed"] >= 20
    assert summary["errors"] == 0
    assert all(c["pass_rate"] == 1.0 for c in summary["by_category"].values())


async def test_wrong_humaneval_solutions_score_zero(tmp_path: Path):
    rows = []
    for task in load_suite("humaneval").tasks[:12]:
        prompt = task.files["solution.py"].decode()
        entry = task.instruction.split("`")[3]
        test = task.tests["tests/test_humaneval.py"].decode()
        check = test[test.index("\n\n") + 2 : test.index("\n\ndef test_humaneval")]
        rows.append(
            {
                "task_id": task.id,
                "prompt": prompt,
                "entry_point": entry,
                # A plausible but wrong body: the grader must fail it, not error on it.
                "canonical_solution": "    return None\n",
                "test": check,
            }
        )
    suite = load_suite(f"humaneval-jsonl:{humaneval_jsonl(tmp_path / 'wrong.jsonl', rows)}")
    summary = await run(suite, OracleSolver(), tmp_path / "out", concurrency=6)
    assert (summary["total"], summary["passed"], summary["failed"], summary["errors"]) == (
        12,
        0,
        12,
        0,
    )
    assert summary["pass_at_k"] == {"1": 0.0}


async def test_unsolved_repo_tasks_score_zero(tmp_path: Path):
    """The starting repo of every task fails its hidden tests (no free points)."""
    suite = load_suite("repo-tasks")
    # One unsolved task loops forever: a short test timeout keeps this test quick.
    quick = Suite(suite.name, tuple(dataclasses.replace(t, test_timeout=10) for t in suite.tasks))
    summary = await run(quick, NullSolver(), tmp_path, concurrency=8)
    assert summary["passed"] == 0
    assert summary["errors"] == 0
    assert summary["failed"] + summary["timeouts"] == len(suite.tasks)
