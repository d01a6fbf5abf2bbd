"""Two eval runs side by side, with the uncertainty a claim needs (`gemma-agent eval-compare`).

    gemma-agent eval-compare runs/thinking-off runs/thinking-on --output runs/compare

For each run: pass@k with a bootstrap 95% confidence interval (tasks resampled with
replacement; a task's samples stay together). On the tasks both ran: the per-task outcome
changes, the difference in pass@1 with a paired bootstrap interval, and an exact two-sided sign
test on the per-task pass rates (with one sample per task this is McNemar's exact test: only
the tasks whose outcome changed count). Then tokens and time per sample. Infra errors are left
out, as in the summary. Writes ``compare.md``, ``compare.html`` and ``compare.json``.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .metrics import BOOTSTRAP, TaskOutcome, bootstrap_ci, pass_at_k, percentile_interval
from .results import SampleResult, read_results

RESULTS = "results.jsonl"


def load_run(folder: Path) -> tuple[dict[str, TaskOutcome], list[SampleResult], dict[str, Any]]:
    """Per-task outcomes, the samples, and the summary's config of an eval output folder."""
    path = Path(folder) / RESULTS
    if not path.is_file():
        raise ConfigError(f"{folder}: no {RESULTS} here; give the --output folder of an eval run.")
    results = [r for r in read_results(path) if not r.infra]
    tasks: dict[str, list[SampleResult]] = defaultdict(list)
    for r in results:
        tasks[r.task_id].append(r)
    outcomes = {t: TaskOutcome(len(rs), sum(r.passed for r in rs)) for t, rs in tasks.items()}
    summary_path = Path(folder) / "summary.json"
    config: dict[str, Any] = {}
    if summary_path.is_file():
        config = json.loads(summary_path.read_text(encoding="utf-8")).get("config", {})
    return outcomes, results, config


def pass_at(outcomes: Sequence[TaskOutcome], k: int) -> float:
    scored = [pass_at_k(o.n, o.c, k) for o in outcomes if o.n >= k]
    return sum(scored) / len(scored) if scored else 0.0


def paired_difference_ci(
    a: Sequence[float], b: Sequence[float], *, reps: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float]:
    """95% interval of mean(b - a) over the paired tasks resampled together."""
    if not a:
        return (0.0, 0.0)
    rng = random.Random(seed)
    diffs = sorted(y - x for x, y in zip(a, b, strict=True))  # order-independent
    stats = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(reps))
    return percentile_interval(stats)


def sign_test(better: int, worse: int) -> float:
    """Exact two-sided sign test (McNemar's exact test on discordant pairs): the p-value of
    ``better`` against ``worse`` under 'no difference' (ties are left out before)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare(run_a: Path, run_b: Path, *, seed: int = 0) -> dict[str, Any]:
    """The comparison as a JSON-ready dict (what the reports show)."""
    a, samples_a, config_a = load_run(run_a)
    b, samples_b, config_b = load_run(run_b)
    if not a or not b:
        raise ConfigError("A run has no results yet (nothing to compare).")
    max_k = min(max(o.n for o in a.values()), max(o.n for o in b.values()))
    runs = {}
    for label, folder, outcomes, samples, config in (
        ("a", run_a, a, samples_a, config_a),
        ("b", run_b, b, samples_b, config_b),
    ):
        values = list(outcomes.values())
        runs[label] = {
            "path": str(folder),
            "config": config,
            "tasks": len(outcomes),
            "samples": len(samples),
            "pass_at_k": {
                str(k): {"value": pass_at(values, k), "ci95": bootstrap_ci(values, k, seed=seed)}
                for k in _ks(max_k)
            },
            "timeouts": sum(r.status == "timeout" for r in samples),
            **_costs(samples),
        }
    common = sorted(set(a) & set(b))
    ra = [a[t].rate for t in common]
    rb = [b[t].rate for t in common]
    better = sum(y > x for x, y in zip(ra, rb, strict=True))
    worse = sum(y < x for x, y in zip(ra, rb, strict=True))
    changes = [
        {"task": t, "a": f"{a[t].c}/{a[t].n}", "b": f"{b[t].c}/{b[t].n}", "change": _change(a[t], b[t])}
        for t in common
        if a[t].rate != b[t].rate
    ]  # fmt: skip
    costs_a = _costs([r for r in samples_a if r.task_id in set(common)])
    costs_b = _costs([r for r in samples_b if r.task_id in set(common)])
    diff = sum(rb) / len(rb) - sum(ra) / len(ra) if common else 0.0
    return {
        "runs": runs,
        "paired": {
            "tasks": len(common),
            "only_in_a": sorted(set(a) - set(b)),
            "only_in_b": sorted(set(b) - set(a)),
            "pass_rate_a": sum(ra) / len(ra) if common else 0.0,
            "pass_rate_b": sum(rb) / len(rb) if common else 0.0,
            "difference": diff,
            "difference_ci95": paired_difference_ci(ra, rb, seed=seed),
            "b_better": better,
            "b_worse": worse,
            "ties": len(common) - better - worse,
            "test": "exact sign test on per-task pass rates (McNemar's exact test at 1 sample)",
            "p_value": sign_test(better, worse),
            "changes": changes,
            "cost_difference": {k: costs_b[k] - costs_a[k] for k in costs_a},
        },
    }


def _ks(max_k: int) -> list[int]:
    return [k for k in (1, 2, 5, 10, 20, 50, 100) if k <= max_k] or [1]


def _costs(samples: Sequence[SampleResult]) -> dict[str, float]:
    n = len(samples) or 1
    return {
        "mean_prompt_tokens": sum(r.tokens.prompt for r in samples) / n,
        "mean_generated_tokens": sum(r.tokens.generated for r in samples) / n,
        "mean_thinking_tokens": sum(r.tokens.thinking for r in samples) / n,
        "mean_seconds": sum(r.seconds for r in samples) / n,
        "mean_steps": sum(r.steps for r in samples) / n,
    }


def _change(a: TaskOutcome, b: TaskOutcome) -> str:
    if a.c == 0 and b.c > 0:
        return "fixed"
    if a.c > 0 and b.c == 0:
        return "broken"
    return "better" if b.rate > a.rate else "worse"


# -- reports ---------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _verdict(p: Mapping[str, Any]) -> str:
    lo, hi = p["difference_ci95"]
    if p["tasks"] == 0:
        return "No task ran in both: nothing to compare."
    direction = "B beats A" if p["difference"] > 0 else "A beats B"
    if p["p_value"] < 0.05 and (lo > 0 or hi < 0):
        return f"{direction} (p = {p['p_value']:.3g}; the 95% interval excludes 0)."
    return (
        f"No significant difference (p = {p['p_value']:.3g}; the 95% interval of the difference "
        f"is {_pct(lo)} to {_pct(hi)})."
    )


def markdown(result: Mapping[str, Any]) -> str:
    runs, p = result["runs"], result["paired"]
    lines = ["# Eval comparison", "", f"- **A**: `{runs['a']['path']}`", f"- **B**: `{runs['b']['path']}`", ""]  # fmt: skip
    lines += [f"**{_verdict(p)}**", "", "## pass@k (95% bootstrap CI over tasks)", ""]
    lines += ["| metric | A | B |", "| --- | --- | --- |"]
    for k in runs["a"]["pass_at_k"]:
        if k not in runs["b"]["pass_at_k"]:
            continue
        cells = []
        for label in ("a", "b"):
            v = runs[label]["pass_at_k"][k]
            cells.append(f"{_pct(v['value'])} [{_pct(v['ci95'][0])}, {_pct(v['ci95'][1])}]")
        lines.append(f"| pass@{k} | {cells[0]} | {cells[1]} |")
    for key in ("tasks", "samples", "timeouts"):
        lines.append(f"| {key} | {runs['a'][key]} | {runs['b'][key]} |")
    lo, hi = p["difference_ci95"]
    lines += ["", f"## Paired, on the {p['tasks']} tasks both ran", ""]
    lines += [
        f"- pass rate: A {_pct(p['pass_rate_a'])}, B {_pct(p['pass_rate_b'])}; "
        f"B − A = {_pct(p['difference'])} [{_pct(lo)}, {_pct(hi)}]",
        f"- B better on {p['b_better']} tasks, worse on {p['b_worse']}, the same on {p['ties']}",
        f"- {p['test']}: p = {p['p_value']:.4g}",
    ]
    if p["only_in_a"] or p["only_in_b"]:
        lines.append(
            f"- only in A: {len(p['only_in_a'])} tasks; only in B: {len(p['only_in_b'])} tasks"
        )
    lines += ["", "## Cost per sample", "", "| | A | B | B − A |", "| --- | --- | --- | --- |"]
    for key, delta in p["cost_difference"].items():
        name = key.removeprefix("mean_").replace("_", " ")
        lines.append(f"| {name} | {runs['a'][key]:.1f} | {runs['b'][key]:.1f} | {delta:+.1f} |")
    lines += ["", "## Outcome changes", ""]
    if not p["changes"]:
        lines.append("No task changed its outcome.")
    else:
        lines += ["| task | A | B | change |", "| --- | --- | --- | --- |"]
        lines += [f"| {c['task']} | {c['a']} | {c['b']} | {c['change']} |" for c in p["changes"]]
    return "\n".join(lines) + "\n"


def html_report(result: Mapping[str, Any]) -> str:
    """A standalone page: the Markdown's tables, plus a bar chart of pass@1 with its CI."""
    runs = result["runs"]
    bars = []
    for i, label in enumerate(("a", "b")):
        v = runs[label]["pass_at_k"]["1"]
        x = 60 + i * 140
        h = 200 * v["value"]
        lo, hi = (200 * c for c in v["ci95"])
        bars.append(
            f'<rect x="{x}" y="{220 - h:.1f}" width="80" height="{h:.1f}" fill="#4c78a8"/>'
            f'<line x1="{x + 40}" x2="{x + 40}" y1="{220 - hi:.1f}" y2="{220 - lo:.1f}" '
            'stroke="black" stroke-width="2"/>'
            f'<text x="{x + 40}" y="240" text-anchor="middle">{label.upper()} '
            f"{_pct(v['value'])}</text>"
        )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="360" height="250" role="img" '
        'aria-label="pass@1 with 95% CI">' + "".join(bars) + "</svg>"
    )
    body = []
    for block in markdown(result).split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if lines[0].startswith("|"):
            rows = [ln.strip("|").split("|") for ln in lines if not ln.startswith("| ---")]
            head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in rows[0])
            trs = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>"
                for r in rows[1:]
            )
            body.append(f"<table><tr>{head}</tr>{trs}</table>")
        elif lines[0].startswith("#"):
            level = len(lines[0]) - len(lines[0].lstrip("#"))
            body.append(f"<h{level}>{html.escape(lines[0].lstrip('# '))}</h{level}>")
        else:
            items = "".join(f"<li>{html.escape(ln.lstrip('- ').strip('*'))}</li>" for ln in lines)
            body.append(f"<ul>{items}</ul>")
    style = "body{font-family:sans-serif;max-width:60em;margin:auto}td,th{padding:2px 8px}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Eval comparison</title>"
        f"<style>{style}</style></head><body>{body[0]}{svg}{''.join(body[1:])}</body></html>\n"
    )


def write_comparison(result: Mapping[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "compare.md": markdown(result),
        "compare.html": html_report(result),
        "compare.json": json.dumps(result, indent=2) + "\n",
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return [out / name for name in files]


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="output folder of the baseline run")
    parser.add_argument("run_b", metavar="RUN_B", help="output folder of the run compared to it")
    parser.add_argument(
        "--output", "-o", default=None, metavar="DIR", help="write compare.md/.html/.json here"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")


def run_compare(args: argparse.Namespace) -> int:
    result = compare(Path(args.run_a), Path(args.run_b), seed=args.seed)
    print(markdown(result), end="")
    if args.output:
        for path in write_comparison(result, Path(args.output)):
            print(f"wrote {path}")
    return 0


__all__ = [
    "TaskOutcome",
    "add_compare_arguments",
    "bootstrap_ci",
    "compare",
    "markdown",
    "run_compare",
    "sign_test",
    "write_comparison",
]
