"""pass@k (the unbiased estimator of Chen et al. 2021) and the run summary."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
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


def pass_at_k_table(results: Iterable[SampleResult], max_k: int) -> dict[str, float]:
    """Mean pass@k over tasks, k in 1..max_k. Errors are not samples (kept out); a task with
    fewer than k graded samples does not count for that k."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        if r.status != "error":
            per_task[r.task_id].append(r.passed)
    table: dict[str, float] = {}
    for k in range(1, max_k + 1):
        values = [pass_at_k(len(v), sum(v), k) for v in per_task.values() if len(v) >= k]
        if values:
            table[str(k)] = round(sum(values) / len(values), 6)
    return table


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
