from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from gemma_agent.errors import ConfigError
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.results import read_results
from gemma_agent.evals.runner import EvalOptions, Shard, merge_outputs, run_suite, select_tasks
from gemma_agent.evals.solvers import OracleSolver, SolveOutcome
from gemma_agent.evals.tasks import Suite, Task
from gemma_agent.evals.workspace import Workspace

from .helpers import NullSolver, adder_suite


async def run(suite: Suite, solver, out: Path, config: dict | None = None, **options) -> dict:
    opts = EvalOptions(output=out, progress=False, **options)
    return await run_suite(
        suite, select_tasks(suite), solver, opts, config or {"suite": suite.name}
    )


class CountingOracle(OracleSolver):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        self.calls.append(run_id)
        return await super().solve(task, workspace, run_id=run_id)


class EverySecondSample(OracleSolver):
    """Solves sample 1 of every task, leaves sample 0 unsolved: pass@1 = 0.5, pass@2 = 1."""

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        if run_id.endswith("-s1"):
            return await super().solve(task, workspace, run_id=run_id)
        return SolveOutcome()


async def test_outputs_and_reports(tmp_path: Path):
    suite = load_suite(str(adder_suite(tmp_path / "suite", 4)))
    out = tmp_path / "out"
    summary = await run(suite, OracleSolver(), out)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    for key in (
        "task_id",
        "sample",
        "passed",
        "status",
        "steps",
        "tokens",
        "tool_calls",
        "seconds",
        "error",
    ):
        assert key in first
    assert set(first["tokens"]) == {"prompt", "cached", "generated", "thinking"}
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["pass_at_k"] == {"1": 1.0} == summary["pass_at_k"]
    for key in ("total", "passed", "failed", "errors", "timeouts", "config"):
        assert key in on_disk
    assert set(on_disk["by_category"]) == {"even", "odd"}
    md = (out / "report.md").read_text()
    assert "pass@1" in md and "| even |" in md and "plots/pass_rate_by_category.svg" in md
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 3 and "Pass rate by category" in html
    for svg in (out / "plots").glob("*.svg"):
        assert ET.parse(svg).getroot().tag.endswith("svg")  # well-formed


async def test_samples_give_unbiased_pass_at_k(tmp_path: Path):
    suite = load_suite(str(adder_suite(tmp_path / "suite", 3)))
    summary = await run(suite, EverySecondSample(), tmp_path / "out", samples=2)
    assert summary["total"] == 6 and summary["passed"] == 3
    assert summary["pass_at_k"] == {"1": 0.5, "2": 1.0}


async def test_resume_skips_finished_and_checks_config(tmp_path: Path):
    suite = load_suite(str(adder_suite(tmp_path / "suite", 3)))
    out = tmp_path / "out"
    first = CountingOracle()
    await run(suite, first, out)
    assert len(first.calls) == 3
    # Running into a folder with results needs --resume or --force.
    with pytest.raises(ConfigError, match="--resume"):
        await run(suite, CountingOracle(), out)
    # More samples on resume: only the new ones run.
    second = CountingOracle()
    summary = await run(suite, second, out, samples=2, resume=True)
    assert sorted(second.calls) == ["add-00-s1", "add-01-s1", "add-02-s1"]
    assert summary["total"] == 6
    # A different configuration is refused, unless forced.
    with pytest.raises(ConfigError, match="another configuration"):
        await run(
            suite, CountingOracle(), out, {"suite": suite.name, "model": "other"}, resume=True
        )
    third = CountingOracle()
    await run(suite, third, out, {"suite": suite.name, "model": "other"}, resume=True, force=True)
    assert third.calls == []
    # --force without --resume starts over.
    fourth = CountingOracle()
    await run(suite, fourth, out, force=True)
    assert len(fourth.calls) == 3 and len(read_results(out / "results.jsonl")) == 3


async def test_torn_last_line_is_redone(tmp_path: Path):
    suite = load_suite(str(adder_suite(tmp_path / "suite", 2)))
    out = tmp_path / "out"
    await run(suite, OracleSolver(), out)
    data = (out / "results.jsonl").read_text()
    (out / "results.jsonl").write_text(data[: len(data) - 20])  # killed mid-write
    again = CountingOracle()
    summary = await run(suite, again, out, resume=True)
    assert len(again.calls) == 1 and summary["passed"] == 2
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_shards_partition_the_suite():
    suite = load_suite("humaneval")
    parts = [select_tasks(suite, shard=Shard(i, 3)) for i in (1, 2, 3)]
    ids = [t.id for part in parts for t in part]
    assert sorted(ids) == sorted(t.id for t in suite.tasks)
    assert all(len(p) > 30 for p in parts)
    assert [t.id for t in select_tasks(suite, shard=Shard(2, 3))] == [t.id for t in parts[1]]
    assert len(select_tasks(suite, limit=10)) == 10


@pytest.mark.parametrize("text", ["0/3", "4/3", "x", "1/0", "1-2"])
def test_bad_shard(text: str):
    with pytest.raises(ConfigError):
        Shard.parse(text)


async def test_merge_shards(tmp_path: Path):
    suite = load_suite(str(adder_suite(tmp_path / "suite", 6)))
    dirs = []
    for i in (1, 2):
        shard = Shard(i, 2)
        out = tmp_path / f"shard{i}"
        tasks = select_tasks(suite, shard=shard)
        opts = EvalOptions(output=out, progress=False)
        await run_suite(
            suite, tasks, OracleSolver(), opts, {"suite": suite.name, "shard": str(shard)}
        )
        dirs.append(out)
    merged = merge_outputs(dirs, tmp_path / "merged")
    assert (merged["total"], merged["passed"]) == (6, 6)
    assert (tmp_path / "merged" / "report.html").exists()
    # Different configurations do not merge.
    other = tmp_path / "other"
    await run(suite, OracleSolver(), other, {"suite": suite.name, "model": "x"})
    with pytest.raises(ConfigError, match="different configurations"):
        merge_outputs([dirs[0], other], tmp_path / "merged2")


async def test_setup_failure_is_an_infra_error(tmp_path: Path):
    root = adder_suite(tmp_path / "suite", 1)
    toml = root / "add-00" / "task.toml"
    toml.write_text(toml.read_text() + 'setup = ["exit 3"]\n')
    summary = await run(load_suite(str(root)), OracleSolver(), tmp_path / "out")
    assert (summary["errors"], summary["infra_errors"], summary["pass_at_k"]) == (1, 1, {})
    # The harness is fixed: a resumed run tries the infra error again.
    toml.write_text(toml.read_text().replace('setup = ["exit 3"]', 'setup = ["true"]'))
    summary = await run(load_suite(str(root)), OracleSolver(), tmp_path / "out", resume=True)
    assert (summary["passed"], summary["errors"]) == (1, 0)


async def test_harness_crash_does_not_stop_the_run(tmp_path: Path):
    class Crashy(NullSolver):
        async def solve(self, task, workspace, *, run_id):
            if run_id.startswith("add-00"):
                raise RuntimeError("boom")
            return await OracleSolver().solve(task, workspace, run_id=run_id)

    summary = await run(load_suite(str(adder_suite(tmp_path / "s", 3))), Crashy(), tmp_path / "out")
    assert (summary["passed"], summary["errors"]) == (2, 1)
    bad = [r for r in read_results(tmp_path / "out" / "results.jsonl") if r.status == "error"]
    assert "boom" in (bad[0].error or "") and bad[0].infra
