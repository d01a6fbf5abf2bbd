"""`gemma-agent eval SUITE ...` and `gemma-agent eval-merge DIR...`.

The engine flags (--model, --engine, ...) and the agent flags (--thinking, --max-steps, ...)
are added by cli.py's shared agent arguments; this module adds only the eval's own.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from .loaders import BUILTIN_SUITES, HUMANEVAL_JSONL_PREFIX, load_suite
from .runner import EvalOptions, Shard, merge_outputs, run_suite, select_tasks
from .solvers import AgentSolver, OracleSolver, Solver

if TYPE_CHECKING:
    from ..tools import MCPServers


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "suite",
        metavar="SUITE",
        help=f"built-in ({', '.join(BUILTIN_SUITES)}), {HUMANEVAL_JSONL_PREFIX}PATH, "
        "a task folder or a folder of them, or a suite.toml",
    )
    parser.add_argument(
        "--web-fetch",
        action="store_true",
        help="give the agent the web_fetch tool (off by default in evals)",
    )
    parser.add_argument(
        "--subagents",
        action="store_true",
        help="give the agent the task tool: sub-agents on the same engine (off by default in "
        "evals)",
    )
    parser.add_argument(
        "--hooks",
        action="store_true",
        help="run the configured hooks (.gemma-agent/settings.json) in each task (off by "
        "default in evals; a project's hooks also need --trust-hooks)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="task-samples run at once on the shared engine (default: 8)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        metavar="K",
        help="independent samples per task; pass@k for k in 1..K (default: 1)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="only the first N tasks of the suite"
    )
    parser.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="DIR",
        help="output folder (default: eval-runs/<suite>[-oracle][-shard-I-of-N])",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip the task-samples already in DIR/results.jsonl"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="start DIR over, or resume it with a different configuration",
    )
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="apply each task's reference solution instead of the agent",
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only shard I of N (1-based; deterministic by task id)",
    )
    parser.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "rlimit"],
        default="auto",
        help="sandbox of setup and test commands (default: bwrap if it works)",
    )
    parser.add_argument(
        "--agent-timeout",
        type=float,
        default=None,
        metavar="S",
        help="override every task's agent timeout (seconds)",
    )
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=None,
        metavar="S",
        help="override every task's test timeout (seconds)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="output folders of sharded runs")
    parser.add_argument(
        "--output",
        "-o",
        default="eval-runs/merged",
        metavar="DIR",
        help="where the merged results go (default: eval-runs/merged)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="merge different configurations, or into a non-empty folder",
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "suite"


def output_folder(args: argparse.Namespace) -> Path:
    """Where `gemma-agent eval` writes (--output, or eval-runs/SUITE[-oracle][-shard-i-of-n])."""
    if args.output:
        return Path(args.output)
    shard = Shard.parse(args.shard) if args.shard else None
    return _default_output(args.suite, args.oracle, shard)


def _default_output(spec: str, oracle: bool, shard: Shard | None) -> Path:
    name = _slug(Path(spec.removeprefix(HUMANEVAL_JSONL_PREFIX)).stem if "/" in spec else spec)
    if oracle:
        name += "-oracle"
    if shard:
        name += f"-shard-{shard.index}-of-{shard.count}"
    return Path("eval-runs") / name


def _agent_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("thinking", "thinking_budget", "max_steps", "tool_choice"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    if getattr(args, "subagents", False):
        options["subagents"] = True
    return options


def _engine_config(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("model", "variant", "engine", "base_url", "max_model_len", "no_grammar")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) not in (None, [], False)}


def run_eval(args: argparse.Namespace) -> int:
    return asyncio.run(_run_eval(args))


async def _run_eval(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    suite = load_suite(args.suite)
    shard = Shard.parse(args.shard) if args.shard else None
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    tasks = select_tasks(suite, limit=args.limit, shard=shard)
    if args.agent_timeout is not None or args.test_timeout is not None:
        from dataclasses import replace

        tasks = [
            replace(
                t,
                agent_timeout=args.agent_timeout or t.agent_timeout,
                test_timeout=args.test_timeout or t.test_timeout,
            )
            for t in tasks
        ]
    if not tasks and shard is None:  # an empty shard of a small suite is fine
        raise ConfigError(f"no task to run in {suite.name} (check --limit)")
    if args.oracle and (missing := [t.id for t in tasks if not t.has_reference]):
        raise ConfigError(
            f"--oracle: these tasks have no reference solution: {', '.join(missing[:10])}"
        )
    output = output_folder(args)
    options = EvalOptions(
        output=output,
        concurrency=args.concurrency,
        samples=args.samples,
        resume=args.resume,
        force=args.force,
        sandbox=None if args.sandbox == "auto" else args.sandbox,
        progress=not args.no_progress,
    )
    config: dict[str, Any] = {
        "suite": suite.name,
        "tasks": len(tasks),
        "oracle": bool(args.oracle),
        "samples": args.samples,
        "concurrency": args.concurrency,
        "limit": args.limit,
        "shard": str(shard) if shard else None,
        "agent_timeout": args.agent_timeout,
        "test_timeout": args.test_timeout,
    }
    engine = None
    mcp: MCPServers | None = None
    solver: Solver
    try:
        if args.oracle:
            solver = OracleSolver()
        else:
            from ..agent.engines.factory import create_engine

            engine = await create_engine(args)
            agent_options = _agent_options(args)
            config |= {
                **_engine_config(args),
                "model": engine.info.model,
                "variant": engine.info.variant,
                "agent": agent_options,
            }
            from ..tools.builtin import coding_tools, web_tools

            mcp = await _start_mcp(args, console)
            if mcp.servers:
                config["mcp_servers"] = [st.name for st in mcp.status() if st.state == "running"]
            if args.hooks:
                config["hooks"] = True
                agent_options = {**agent_options, "hooks": _load_hooks(args, console)}
            solver = AgentSolver(
                engine,
                trajectories=output / "trajectories",
                agent_options=agent_options,
                tools=lambda: [
                    *coding_tools(),
                    *(web_tools() if args.web_fetch else []),
                    *mcp.tools(),
                ],
            )
        summary = await run_suite(suite, tasks, solver, options, config, console=console)
    finally:
        if mcp is not None:
            await mcp.aclose()
        if engine is not None:
            await engine.aclose()
    print_summary(console, summary, output)
    return 0


async def _start_mcp(args: argparse.Namespace, console: Console) -> MCPServers:
    """The configured MCP servers (shared by all tasks; they run outside the task sandboxes,
    in the --workspace folder). Problems are printed, never fatal."""
    from ..tools import start_mcp_servers

    servers, notices, _ = await start_mcp_servers(
        getattr(args, "workspace", None) or ".", trust=bool(getattr(args, "trust_mcp", None))
    )
    for note in notices:
        console.print(f"[yellow]MCP:[/] {note}")
    return servers


def _load_hooks(args: argparse.Namespace, console: Console) -> Any:
    """`eval --hooks`: the user's hooks and the --workspace project's (once trusted), run in
    each task's workspace. Without --hooks evals run none."""
    from ..agent import load_hooks

    hooks, notices = load_hooks(
        getattr(args, "workspace", None) or ".", trust=bool(getattr(args, "trust_hooks", None))
    )
    for note in notices:
        console.print(f"[yellow]hooks:[/] {note}")
    return hooks


def print_summary(console: Console, summary: dict[str, Any], output: Path) -> None:
    table = Table(title=f"eval: {summary['config'].get('suite')}", show_header=False)
    table.add_row("task-samples", str(summary["total"]))
    table.add_row("passed", f"[green]{summary['passed']}[/]")
    table.add_row("failed", str(summary["failed"]))
    table.add_row("timeouts", str(summary["timeouts"]))
    table.add_row(
        "errors (excluded from pass@k)",
        f"[red]{summary['errors']}[/] ({summary['infra_errors']} infra)",
    )
    for k, v in summary["pass_at_k"].items():
        table.add_row(f"pass@{k}", f"[bold]{v:.2%}[/]")
    if summary.get("missing"):
        table.add_row("not run yet", str(summary["missing"]))
    console.print(table)
    console.print(f"results: {output}/results.jsonl  report: {output}/report.html")


def run_merge(args: argparse.Namespace) -> int:
    output = Path(args.output)
    summary = merge_outputs([Path(d) for d in args.dirs], output, force=args.force)
    print_summary(Console(stderr=True), summary, output)
    return 0
