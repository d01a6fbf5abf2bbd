"""report.md and report.html: tables and plots (inline SVG we draw ourselves, no plotting
dependency): pass rate by category, steps and generated-token distributions."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .results import SampleResult

_BAR = "#4e79a7"
_FONT = "font-family='sans-serif' font-size='12'"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def bar_chart_svg(
    title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = ""
) -> str:
    """Horizontal bars, one per label (values in 0..max)."""
    width, label_w, row = 640, 180, 22
    height = 40 + row * max(1, len(labels))
    top = max(values, default=0) or 1.0
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img'>",
        f"<text x='10' y='20' {_FONT} font-weight='bold'>{_esc(title)}</text>",
    ]
    span = width - label_w - 70
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 32 + i * row
        w = max(1.0, span * value / top)
        shown = f"{value:.0%}" if unit == "%" else f"{value:g}"
        parts += [
            f"<text x='{label_w - 6}' y='{y + 14}' {_FONT} text-anchor='end'>{_esc(label[:28])}</text>",
            f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{row - 6}' fill='{_BAR}'/>",
            f"<text x='{label_w + w + 4:.1f}' y='{y + 14}' {_FONT}>{_esc(shown)}</text>",
        ]
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(title: str, values: Sequence[float], *, bins: int = 12) -> str:
    width, height, left, bottom = 640, 220, 50, 40
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img'>",
        f"<text x='10' y='20' {_FONT} font-weight='bold'>{_esc(title)}</text>",
    ]
    if not values:
        parts.append(f"<text x='{left}' y='60' {_FONT}>no data</text></svg>")
        return "".join(parts)
    lo, hi = min(values), max(values)
    if hi == lo:
        hi = lo + 1
    bins = max(1, min(bins, len(set(values)) if len(set(values)) > 1 else 1))
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    plot_w, plot_h = width - left - 20, height - bottom - 35
    bar_w = plot_w / bins
    top = max(counts)
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = left + i * bar_w
        y = 30 + plot_h - h
        parts.append(
            f"<rect x='{x + 1:.1f}' y='{y:.1f}' width='{bar_w - 2:.1f}' height='{h:.1f}' fill='{_BAR}'>"
            f"<title>{_esc(f'{lo + i * (hi - lo) / bins:.4g}..{lo + (i + 1) * (hi - lo) / bins:.4g}: {c}')}</title></rect>"
        )
        if c:
            parts.append(
                f"<text x='{x + bar_w / 2:.1f}' y='{y - 3:.1f}' {_FONT} text-anchor='middle'>{c}</text>"
            )
    base = 30 + plot_h
    parts += [
        f"<line x1='{left}' y1='{base}' x2='{left + plot_w}' y2='{base}' stroke='black'/>",
        f"<text x='{left}' y='{base + 16}' {_FONT}>{lo:.4g}</text>",
        f"<text x='{left + plot_w}' y='{base + 16}' {_FONT} text-anchor='end'>{hi:.4g}</text>",
        "</svg>",
    ]
    return "".join(parts)


def _plots(
    summary: Mapping[str, Any], results: Sequence[SampleResult]
) -> dict[str, tuple[str, str]]:
    cats = summary.get("by_category", {})
    graded = [r for r in results if r.status != "error"]
    return {
        "pass_rate_by_category": (
            "Pass rate by category",
            bar_chart_svg(
                "Pass rate by category (errors excluded)",
                list(cats),
                [c["pass_rate"] for c in cats.values()],
                unit="%",
            ),
        ),
        "steps": (
            "Steps per run",
            histogram_svg("Agent steps per run", [float(r.steps) for r in graded]),
        ),
        "tokens": (
            "Generated tokens per run",
            histogram_svg("Generated tokens per run", [float(r.tokens.generated) for r in graded]),
        ),
    }


def _headline_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("task-samples", str(summary["total"])),
        ("tasks", str(summary["tasks"])),
        ("passed", str(summary["passed"])),
        ("failed", str(summary["failed"])),
        ("timeouts", str(summary["timeouts"])),
        ("errors (excluded from pass@k)", f"{summary['errors']} ({summary['infra_errors']} infra)"),
    ]
    intervals = summary.get("pass_at_k_ci95", {})  # absent in summaries written before
    for k, v in summary["pass_at_k"].items():
        ci = intervals.get(k)
        shown = f"{v:.2%}" + (f" (95% CI {ci[0]:.2%} to {ci[1]:.2%})" if ci else "")
        rows.append((f"pass@{k}", shown))
    tok = summary["tokens"]
    rows.append(
        (
            "tokens (prompt / cached / generated / thinking)",
            f"{tok['prompt']} / {tok['cached']} / {tok['generated']} / {tok['thinking']}",
        )
    )
    rows.append(("tool calls", str(summary["tool_calls"])))
    return rows


def _problem_rows(results: Sequence[SampleResult], limit: int = 100) -> list[SampleResult]:
    bad = [r for r in results if r.status != "passed"]
    return sorted(bad, key=lambda r: (r.status, r.task_id, r.sample))[:limit]


def _one_line(text: str | None, n: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def write_reports(out: Path, summary: Mapping[str, Any], results: Sequence[SampleResult]) -> None:
    plots = _plots(summary, results)
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    for name, (_, svg) in plots.items():
        (plot_dir / f"{name}.svg").write_text(svg, encoding="utf-8")
    (out / "report.md").write_text(_markdown(summary, results, plots), encoding="utf-8")
    (out / "report.html").write_text(_html(summary, results, plots), encoding="utf-8")


def _markdown(
    summary: Mapping[str, Any],
    results: Sequence[SampleResult],
    plots: Mapping[str, tuple[str, str]],
) -> str:
    cfg = summary["config"]
    lines = [f"# Eval report: {cfg.get('suite', '?')}", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in _headline_rows(summary)]
    lines += [
        "",
        "## By category",
        "",
        "| category | samples | passed | errors | pass rate |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, c in summary["by_category"].items():
        lines.append(
            f"| {name} | {c['total']} | {c['passed']} | {c['errors']} | {c['pass_rate']:.1%} |"
        )
    lines += [
        "",
        "## Distributions",
        "",
        "| | mean | median | min | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, dist in (
        ("steps", summary["steps"]),
        ("generated tokens", summary["tokens"]["generated_per_sample"]),
        ("seconds", summary["seconds"]),
    ):
        if dist:
            lines.append(
                f"| {label} | {dist['mean']} | {dist['median']} | {dist['min']} | {dist['max']} |"
            )
    lines.append("")
    for name, (title, _) in plots.items():
        lines += [f"![{title}](plots/{name}.svg)", ""]
    problems = _problem_rows(results)
    if problems:
        lines += [
            "## Not passed",
            "",
            "| task | sample | status | error |",
            "| --- | ---: | --- | --- |",
        ]
        for r in problems:
            err = _one_line(r.error).replace("|", "\\|")
            lines.append(f"| {r.task_id} | {r.sample} | {r.status} | {err} |")
        lines.append("")
    lines += ["## Config", "", "```json", json.dumps(cfg, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    th = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _html(
    summary: Mapping[str, Any],
    results: Sequence[SampleResult],
    plots: Mapping[str, tuple[str, str]],
) -> str:
    cfg = summary["config"]
    cats = [
        (name, c["total"], c["passed"], c["errors"], f"{c['pass_rate']:.1%}")
        for name, c in summary["by_category"].items()
    ]
    problems = [
        (r.task_id, r.sample, r.status, _one_line(r.error, 300)) for r in _problem_rows(results)
    ]
    body = [
        f"<h1>Eval report: {_esc(cfg.get('suite', '?'))}</h1>",
        _table(["", ""], _headline_rows(summary)),
        "<h2>By category</h2>",
        _table(["category", "samples", "passed", "errors", "pass rate"], cats),
        "<h2>Plots</h2>",
        *(f"<figure>{svg}</figure>" for _, svg in plots.values()),
    ]
    if problems:
        body += ["<h2>Not passed</h2>", _table(["task", "sample", "status", "error"], problems)]
    body += ["<h2>Config</h2>", f"<pre>{_esc(json.dumps(cfg, indent=2, sort_keys=True))}</pre>"]
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}th{background:#f4f4f4}figure{margin:1em 0}"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Eval report: {_esc(cfg.get('suite', '?'))}</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
