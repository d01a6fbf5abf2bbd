"""pass@k (the unbiased estimator of Chen et al. 2021), its bootstrap confidence interval, and
the run summary."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .results import SampleResult


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn from n, of which c are correct, is correct)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # 1 - C(n-c, k) / C(n, k), as a stable product.
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


BOOTSTRAP = 2000  # resamples of a bootstrap interval


@dataclass(frozen=True)
class TaskOutcome:
    """One task in one run: ``n`` graded samples, ``c`` of them passed."""

    n: int
    c: int

    @property
    def rate(self) -> float:
        return self.c / self.n if self.n else 0.0


def bootstrap_ci(
    outcomes: Sequence[TaskOutcome], k: int, *, reps: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of mean pass@k over tasks resampled with replacement (a task's
    samples stay together); tasks with fewer than k samples do not count."""
    items = [o for o in outcomes if o.n >= k]
    if not items:
        return (0.0, 0.0)
    rng = random.Random(seed)
    # Sorted: the same outcomes give the same interval whatever order the results came in.
    values = sorted(pass_at_k(o.n, o.c, k) for o in items)
    stats = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(reps))
    return percentile_interval(stats)


def percentile_interval(sorted_stats: Sequence[float]) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of sorted bootstrap statistics."""
    n = len(sorted_stats)
    return sorted_stats[int(0.025 * (n - 1))], sorted_stats[math.ceil(0.975 * (n - 1))]


def task_outcomes(results: Iterable[SampleResult]) -> dict[str, TaskOutcome]:
    """Per-task samples and passes, as pass@k counts them: errors are not samples."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        if r.status != "error":
            per_task[r.task_id].append(r.passed)
    return {t: TaskOutcome(len(v), sum(v)) for t, v in per_task.items()}


def pass_at_k_table(results: Iterable[SampleResult], max_k: int) -> dict[str, float]:
    """Mean pass@k over tasks, k in 1..max_k. Errors are not samples (kept out); a task with
    fewer than k graded samples does not count for that k."""
    outcomes = task_outcomes(results).values()
    table: dict[str, float] = {}
    for k in range(1, max_k + 1):
        values = [pass_at_k(o.n, o.c, k) for o in outcomes if o.n >= k]
        if values:
            table[str(k)] = round(sum(values) / len(values), 6)
    return table


def pass_at_k_intervals(
    results: Iterable[SampleResult], max_k: int, *, seed: int = 0
) -> dict[str, list[float]]:
    """The 95% bootstrap interval ``[low, high]`` of each pass@k of `pass_at_k_table`."""
    outcomes = list(task_outcomes(results).values())
    return {
        str(k): [round(x, 6) for x in bootstrap_ci(outcomes, k, seed=seed)]
        for k in range(1, max_k + 1)
        if any(o.n >= k for o in outcomes)
    }


def _dist(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "mean": round(statistics.fmean(values), 3),
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def summarize(
    results: list[SampleResult], *, samples: int, config: Mapping[str, Any]
) -> dict[str, Any]:
    by_status = {
        s: sum(r.status == s for r in results) for s in ("passed", "failed", "error", "timeout")
    }
    categories: dict[str, dict[str, int]] = defaultdict(
        lambda: {"total": 0, "passed": 0, "errors": 0}
    )
    for r in results:
        cat = categories[r.category]
        cat["total"] += 1
        cat["passed"] += r.passed
        cat["errors"] += r.status == "error"
    graded = len(results) - by_status["error"]
    return {
        "total": len(results),
        "tasks": len({r.task_id for r in results}),
        "passed": by_status["passed"],
        "failed": by_status["failed"],
        "errors": by_status["error"],
        "timeouts": by_status["timeout"],
        "infra_errors": sum(r.infra for r in results),
        "errors_excluded_from_pass_at_k": by_status["error"],
        "pass_rate": round(by_status["passed"] / graded, 6) if graded else 0.0,
        "pass_at_k": pass_at_k_table(results, samples),
        # 95% bootstrap intervals (tasks resampled, a task's samples together; seed 0).
        "pass_at_k_ci95": pass_at_k_intervals(results, samples),
        "by_category": {
            name: {
                **cat,
                "pass_rate": round(cat["passed"] / (cat["total"] - cat["errors"]), 6)
                if cat["total"] > cat["errors"]
                else 0.0,
            }
            for name, cat in sorted(categories.items())
        },
        "steps": _dist([float(r.steps) for r in results if r.status != "error"]),
        "tokens": {
            "prompt": sum(r.tokens.prompt for r in results),
            "cached": sum(r.tokens.cached for r in results),
            "generated": sum(r.tokens.generated for r in results),
            "thinking": sum(r.tokens.thinking for r in results),
            "generated_per_sample": _dist([float(r.tokens.generated) for r in results]),
        },
        "tool_calls": sum(r.tool_calls for r in results),
        "seconds": _dist([r.seconds for r in results]),
        "config": dict(config),
    }
