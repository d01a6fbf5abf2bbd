"""The concurrent, resumable eval runner.

N task-samples run at once (``asyncio`` + a semaphore) so one shared engine batches them; test
runs are limited to the CPU count on top. Each task-sample gets a fresh temporary workspace;
its result is appended and flushed to ``results.jsonl`` the moment it is graded, so a killed run
loses nothing finished and ``--resume`` skips it (infra errors run again). ``eval.lock`` holds the config hash: resuming
with another configuration is refused unless forced.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import AgentError, ConfigError, EngineUnavailable
from .grader import grade
from .metrics import summarize
from .report import write_reports
from .results import RESULTS_NAME, ResultsLog, SampleResult, read_results
from .sandbox import SandboxKind, sandbox_kind
from .solvers import Solver, run_id_for
from .tasks import Suite, Task
from .workspace import Workspace, WorkspaceError, sweep_stale

LOCK_NAME = "eval.lock"
SUMMARY_NAME = "summary.json"
TRAJECTORIES = "trajectories"
# Not part of the config hash: they change how a run goes, not what it measures.
_UNHASHED = ("samples", "concurrency", "limit", "tasks", "output", "shard")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard {text!r}: write I/N, e.g. --shard 1/4") from None
        if n < 1 or not 1 <= i <= n:
            raise ConfigError(f"--shard {text!r}: I must be 1..N (shards are numbered from 1)")
        return cls(i, n)

    def owns(self, task_id: str) -> bool:
        # A stable hash of the id: a task stays in its shard when others are added or removed.
        h = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big")
        return h % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def select_tasks(
    suite: Suite, *, limit: int | None = None, shard: Shard | None = None
) -> list[Task]:
    """The first `limit` tasks of the suite, then this shard's part of them."""
    tasks = list(suite.tasks)
    if limit is not None:
        tasks = tasks[:limit]
    if shard is not None:
        tasks = [t for t in tasks if shard.owns(t.id)]
    return tasks


def config_hash(config: Mapping[str, Any]) -> str:
    hashed = {k: v for k, v in config.items() if k not in _UNHASHED}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class EvalOptions:
    output: Path
    concurrency: int = 8
    samples: int = 1
    resume: bool = False
    force: bool = False
    sandbox: SandboxKind | None = None  # None: bwrap when it works here, else rlimits
    progress: bool = True
    test_concurrency: int = field(default_factory=lambda: os.cpu_count() or 2)
    workdir: Path | None = None  # parent of the temporary workspaces

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if self.samples < 1:
            raise ConfigError("--samples must be at least 1")


@contextlib.contextmanager
def _locked_output(out: Path, config: Mapping[str, Any], options: EvalOptions) -> Iterator[None]:
    """Claim the output folder: refuse a concurrent run, a clobber, or a mismatched resume."""
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / LOCK_NAME
    fd: IO[str] = lock_path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fd.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{out} is in use by another eval run; wait for it or use --output"
            ) from None
        fd.seek(0)
        previous = fd.read().strip()
        has_results = (out / RESULTS_NAME).exists() and (out / RESULTS_NAME).stat().st_size > 0
        wanted = config_hash(config)
        if has_results and not options.resume:
            if not options.force:
                raise ConfigError(
                    f"{out} already holds results: pass --resume to finish that run, "
                    "--force to start it over, or choose another --output"
                )
            for name in (RESULTS_NAME, SUMMARY_NAME, "report.md", "report.html"):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / TRAJECTORIES, ignore_errors=True)
            shutil.rmtree(out / "plots", ignore_errors=True)
        elif has_results and previous:
            try:
                old = json.loads(previous)
            except json.JSONDecodeError:
                old = {}
            if old.get("config_hash") != wanted and not options.force:
                raise ConfigError(
                    f"{out} was started with another configuration (hash {old.get('config_hash')}, "
                    f"now {wanted}); resume with the same options, or pass --force to mix them. "
                    f"It was: {json.dumps(old.get('config'), sort_keys=True)}"
                )
        fd.seek(0)
        fd.truncate()
        fd.write(
            json.dumps(
                {"config_hash": wanted, "config": dict(config), "pid": os.getpid()}, default=str
            )
        )
        fd.flush()
        yield
    finally:
        fd.close()  # releases the flock


# A sample's status -> its field on the progress line (the summary's keys: a timeout is a
# timeout there too, not a failure).
PROGRESS_FIELDS = {"passed": "passed", "failed": "failed", "timeout": "timeouts", "error": "errors"}


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "passed [green]{task.fields[passed]}[/] failed {task.fields[failed]} "
            "timeouts [yellow]{task.fields[timeouts]}[/] errors [red]{task.fields[errors]}[/]"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


async def run_suite(
    suite: Suite,
    tasks: Sequence[Task],
    solver: Solver,
    options: EvalOptions,
    config: Mapping[str, Any],
    *,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run every (task, sample) not yet in results.jsonl; write summary.json and the reports."""
    console = console or Console(stderr=True)
    out = options.output
    kind = options.sandbox or sandbox_kind()
    config = {**config, "sandbox": kind}
    with _locked_output(out, config, options):
        await asyncio.to_thread(sweep_stale, options.workdir)
        wanted = {(t.id, s) for t in tasks for s in range(options.samples)}
        # Infra errors are not results of the configuration: a resumed run tries them again.
        previous = [r for r in read_results(out / RESULTS_NAME) if r.key in wanted and not r.infra]
        done = {r.key for r in previous}
        todo = [(t, s) for t in tasks for s in range(options.samples) if (t.id, s) not in done]
        log = ResultsLog(out / RESULTS_NAME)
        run_slots = asyncio.Semaphore(options.concurrency)
        test_slots = asyncio.Semaphore(max(1, options.test_concurrency))
        counts = {"passed": 0, "failed": 0, "timeouts": 0, "errors": 0}  # as the summary counts

        def count(status: str) -> None:
            counts[PROGRESS_FIELDS.get(status, "failed")] += 1

        for r in previous:
            count(r.status)
        progress = _progress(console, options.progress)
        bar = progress.add_task(
            suite.name if len(suite.name) < 40 else "…" + suite.name[-39:],
            total=len(wanted),
            completed=len(done),
            **counts,  # type: ignore[arg-type]  # the line's fields
        )

        async def one(task: Task, sample: int) -> None:
            async with run_slots:
                result = await _run_one(task, sample, solver, kind, test_slots, options)
            log.append(result)
            count(result.status)
            progress.update(bar, advance=1, **counts)  # type: ignore[arg-type]  # fields

        try:
            with progress:
                async with asyncio.TaskGroup() as group:
                    for task, sample in todo:
                        group.create_task(one(task, sample), name=f"eval {task.id} #{sample}")
        except BaseExceptionGroup as group_error:
            # The engine died (or we were interrupted): keep a summary of what finished, then
            # surface the first of our own errors plainly.
            log.close()
            _finish(out, tasks, options.samples, config)
            ours = [e for e in group_error.exceptions if isinstance(e, AgentError)]
            if ours:
                raise ours[0] from group_error
            raise
        finally:
            log.close()
        return _finish(out, tasks, options.samples, config)


def _finish(
    out: Path, tasks: Sequence[Task], samples: int, config: Mapping[str, Any]
) -> dict[str, Any]:
    wanted = {(t.id, s) for t in tasks for s in range(samples)}
    results = [r for r in read_results(out / RESULTS_NAME) if r.key in wanted]
    results.sort(key=lambda r: (r.task_id, r.sample))
    summary = summarize(results, samples=samples, config=config)
    summary["missing"] = len(wanted) - len(results)
    write_summary(out, summary, results)
    return summary


def write_summary(out: Path, summary: Mapping[str, Any], results: Sequence[SampleResult]) -> None:
    tmp = out / (SUMMARY_NAME + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(out / SUMMARY_NAME)
    write_reports(out, summary, results)


async def _run_one(
    task: Task,
    sample: int,
    solver: Solver,
    kind: SandboxKind,
    test_slots: asyncio.Semaphore,
    options: EvalOptions,
) -> SampleResult:
    start = time.monotonic()
    base: dict[str, Any] = {"task_id": task.id, "sample": sample, "category": task.category}
    run_id = run_id_for(task.id, sample)
    try:
        workspace = await asyncio.to_thread(Workspace.create, task, parent=options.workdir)
    except OSError as e:
        return SampleResult(
            **base,
            passed=False,
            status="error",
            infra=True,
            error=f"cannot create the workspace: {e}",
        )
    try:
        try:
            await workspace.setup(task, kind=kind)
            outcome = await solver.solve(task, workspace, run_id=run_id)
        except WorkspaceError as e:
            return SampleResult(
                **base,
                passed=False,
                status="error",
                infra=True,
                error=str(e),
                seconds=time.monotonic() - start,
            )
        trajectory = None
        if outcome.trajectory is not None:
            with contextlib.suppress(ValueError):
                trajectory = outcome.trajectory.relative_to(options.output).as_posix()
        agent: dict[str, Any] = {
            "steps": outcome.steps,
            "tokens": outcome.tokens,
            "tool_calls": outcome.tool_calls,
            "tool_errors": outcome.tool_errors,
            "agent_seconds": round(outcome.seconds, 3),
            "stop_reason": outcome.stop_reason,
            "trajectory": trajectory,
        }
        if outcome.status != "done":
            return SampleResult(
                **base,
                **agent,
                passed=False,
                status=outcome.status,
                infra=outcome.infra,
                error=outcome.error,
                seconds=round(time.monotonic() - start, 3),
            )
        async with test_slots:
            verdict = await grade(task, workspace, kind=kind)
        error = verdict.error
        if outcome.error and not verdict.passed:
            error = f"{error}; agent: {outcome.error}" if error else f"agent: {outcome.error}"
        return SampleResult(
            **base,
            **agent,
            passed=verdict.passed,
            status=verdict.status,
            infra=verdict.infra,
            error=error,
            tests_run=verdict.tests_run,
            tests_failed=verdict.tests_failed,
            test_seconds=round(verdict.seconds, 3),
            test_output=verdict.output[-4000:] if not verdict.passed else "",
            seconds=round(time.monotonic() - start, 3),
        )
    except (asyncio.CancelledError, KeyboardInterrupt, EngineUnavailable):
        raise
    except Exception as e:
        tb = traceback.format_exc(limit=5)
        return SampleResult(
            **base,
            passed=False,
            status="error",
            infra=True,
            error=f"harness error: {type(e).__name__}: {e}\n{tb}",
            seconds=round(time.monotonic() - start, 3),
        )
    finally:
        await asyncio.to_thread(workspace.cleanup)


def merge_outputs(dirs: Sequence[Path], out: Path, *, force: bool = False) -> dict[str, Any]:
    """Merge the output folders of sharded runs of one configuration into ``out``."""
    if not dirs:
        raise ConfigError("eval-merge needs at least one output folder")
    configs: list[dict[str, Any]] = []
    for d in dirs:
        lock = d / LOCK_NAME
        if not (d / RESULTS_NAME).exists() or not lock.exists():
            raise ConfigError(f"{d}: not an eval output folder (no {RESULTS_NAME} / {LOCK_NAME})")
        configs.append(json.loads(lock.read_text(encoding="utf-8"))["config"])
    hashes = {config_hash(c) for c in configs}
    if len(hashes) > 1 and not force:
        raise ConfigError(
            "these folders were run with different configurations; merge only shards of one "
            "run (or pass --force)"
        )
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out} is not empty: choose another --output or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    merged: dict[tuple[str, int], SampleResult] = {}
    for d in dirs:
        for r in read_results(d / RESULTS_NAME):
            merged.setdefault(r.key, r)
        src = d / TRAJECTORIES
        if src.is_dir():
            shutil.copytree(src, out / TRAJECTORIES, dirs_exist_ok=True)
    results = sorted(merged.values(), key=lambda r: (r.task_id, r.sample))
    samples = max((r.sample + 1 for r in results), default=1)
    config = {k: v for k, v in configs[0].items() if k != "shard"}
    config["merged_from"] = [str(d) for d in dirs]
    config["shards"] = [c.get("shard") for c in configs]
    with (out / RESULTS_NAME).open("w", encoding="utf-8") as f:
        for r in results:
            f.write(r.model_dump_json() + "\n")
    (out / LOCK_NAME).write_text(
        json.dumps({"config_hash": config_hash(config), "config": config}), encoding="utf-8"
    )
    summary = summarize(results, samples=samples, config=config)
    write_summary(out, summary, results)
    return summary
