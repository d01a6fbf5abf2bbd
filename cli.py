"""The `gemma-agent` command: wiring only (the flags here; the TUI's launch in `launch.py`).

gemma-agent                      the TUI on the embedded engine
gemma-agent run "task"           headless run (rich output, or --json events)
gemma-agent eval SUITE           scripted eval run on coding tasks
gemma-agent eval-merge DIR...    merge sharded eval outputs
gemma-agent eval-compare A B     compare two eval runs (CIs, paired test)
gemma-agent replay PATH|ID       a saved session or eval trajectory in the TUI, read-only
gemma-agent export RUN... --output DIR   training data (exact token ids + loss masks)
gemma-agent rewind SESSION       list a session's checkpoints, or go back to one (--to N)
gemma-agent checkpoints prune    delete old workspace snapshots
gemma-agent models               list model presets
gemma-agent tiny-model PATH      write the tiny random-weight Gemma 4 model
gemma-agent sandbox-check        probe run_shell's sandbox on this machine
gemma-agent acp                  an Agent Client Protocol agent on stdio (Zed, JetBrains, Neovim)
gemma-agent mcp-serve            the agent as an MCP server on stdio (a tool other agents call)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import AgentError


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine flags (`EngineConfig` fields; ``create_engine`` takes the parsed namespace).
    `/model` in the TUI takes them too."""
    from .agent.engines.presets import BACKENDS

    g = parser.add_argument_group("model and engine")
    g.add_argument(
        "--model",
        default=None,
        help="preset (E2B, E4B, 12B, 26B-A4B, 31B), HF id, local checkpoint folder, 'tiny' or "
        "'tiny-mm' (with image/audio towers) (default: E4B on a GPU, tiny on CPU-only machines)",
    )
    g.add_argument(
        "--variant",
        default=None,
        help="which Gemma 4 the model is (E2B/E4B/12B/26B-A4B/31B), when it cannot be detected",
    )
    g.add_argument(
        "--engine",
        choices=["vllm", "http"],
        default=None,
        help="vllm: embedded (default); http: a running `vllm serve`",
    )
    g.add_argument(
        "--base-url",
        action="append",
        default=None,
        metavar="URL",
        help="vllm serve URL for --engine http (repeat for replicas)",
    )
    g.add_argument("--api-key", default=None, help="API key of the vllm serve endpoint")
    g.add_argument(
        "--routing",
        choices=["affinity", "least-in-flight"],
        default=None,
        help="how --engine http spreads requests over replicas: affinity (default) keeps each "
        "session on one replica, where its prefix is cached",
    )
    g.add_argument("--max-model-len", type=int, default=None, metavar="N")
    g.add_argument("--gpu-memory-utilization", type=float, default=None, metavar="F")
    g.add_argument("--tensor-parallel-size", type=int, default=None, metavar="N")
    g.add_argument("--pipeline-parallel-size", type=int, default=None, metavar="N")
    g.add_argument("--data-parallel-size", type=int, default=None, metavar="N")
    g.add_argument(
        "--enable-expert-parallel",
        action="store_true",
        default=None,
        help="expert parallelism for the MoE 26B-A4B",
    )
    g.add_argument(
        "--distributed-executor-backend",
        choices=BACKENDS,
        default=None,
        help="ray for multi-node",
    )
    g.add_argument(
        "--no-grammar",
        action="store_true",
        default=None,
        help="do not constrain tool calls with a grammar",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give a number of at least 1")
    return value


def _add_agent_arguments(
    p: argparse.ArgumentParser, *, session_resume: bool = True, subagents: bool = True
) -> None:
    add_engine_arguments(p)
    p.add_argument("--workspace", default=".", help="folder the agent works in (default: .)")
    p.add_argument(
        "--approval",
        choices=["read-only", "ask", "auto", "yolo"],
        default=None,
        help="approval mode for tool calls",
    )
    p.add_argument(
        "--approval-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="deny a call that waits this long for approval (default: wait)",
    )
    p.add_argument(
        "--thinking",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let the model think before answering",
    )
    p.add_argument("--thinking-budget", type=int, default=None, metavar="N")
    p.add_argument("--tool-choice", default=None, metavar="auto|required|none|NAME")
    p.add_argument("--max-steps", type=int, default=None, metavar="N")
    p.add_argument(
        "--plan",
        action="store_true",
        default=None,
        help="plan mode: only read-only tools and update_plan (the call grammar enforces it)",
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read AGENTS.md memory and skills into the system turn (default: on)",
    )
    if subagents:  # `eval` keeps them off (its runner builds its own agents)
        p.add_argument(
            "--subagents",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="the task tool: the agent hands searches and side tasks to sub-agents "
            "(explore, general, .gemma-agent/agents/*.md) (default: on)",
        )
        p.add_argument(
            "--max-subagents",
            type=_positive_int,
            default=None,
            metavar="N",
            help="sub-agents running at once, at most (default: 4)",
        )
    if session_resume:  # `eval` has its own --resume (skip finished task-samples)
        p.add_argument("--resume", default=None, metavar="ID", help="continue a saved session")
    p.add_argument(
        "--trust-hooks",
        action="store_true",
        default=None,
        help="run the project's hooks (.gemma-agent/settings.json) and remember them as trusted",
    )
    p.add_argument(
        "--trust-mcp",
        action="store_true",
        default=None,
        help="start the project's MCP servers (.mcp.json, .gemma-agent/config.toml) and "
        "remember this set as trusted",
    )
    p.add_argument("--image", action="append", default=[], metavar="PATH")
    p.add_argument("--audio", action="append", default=[], metavar="PATH")
    p.add_argument(
        "--otel",
        action="store_true",
        default=None,
        help="OpenTelemetry traces and metrics over OTLP/HTTP (the OTEL_* variables say where; "
        "also on when OTEL_EXPORTER_OTLP_ENDPOINT is set); needs gemma-agent[otel]",
    )
    p.add_argument(
        "--otel-content",
        action="store_true",
        default=None,
        help="put prompts, answers and tool arguments/results into the spans (off by default)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        default=None,
        help="show the engine's (vLLM's) logs on stderr instead of only in the log file",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemma-agent",
        description="A Gemma-4-native coding agent. Without a subcommand: the interactive TUI.",
    )
    parser.add_argument("--version", action="version", version=f"gemma-agent {__version__}")
    _add_agent_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run one task headless and print the events")
    run.add_argument("task", nargs="?", default=None, help="the task (or --resume ID)")
    run.add_argument("--json", action="store_true", help="one JSON object per event per line")
    _add_agent_arguments(run)

    ev = sub.add_parser("eval", help="run an eval suite on coding tasks")
    from .evals.cli import add_eval_arguments, add_merge_arguments

    add_eval_arguments(ev)
    _add_agent_arguments(ev, session_resume=False, subagents=False)
    merge = sub.add_parser("eval-merge", help="merge the outputs of sharded eval runs")
    add_merge_arguments(merge)
    from .evals.compare import add_compare_arguments

    add_compare_arguments(
        sub.add_parser("eval-compare", help="compare two eval runs (pass@k with CIs, paired test)")
    )
    from .evals.export import add_export_arguments

    add_export_arguments(
        sub.add_parser("export", help="export sessions and eval runs as training data")
    )

    replay = sub.add_parser(
        "replay", help="show a saved session or an eval trajectory in the TUI, read-only"
    )
    replay.add_argument(
        "path", metavar="PATH|ID", help="a session log, an eval trajectory, or a session id"
    )
    replay.add_argument("--workspace", default=".", help="where session ids are looked up")

    from .headless.rewind import add_checkpoints_arguments, add_rewind_arguments

    add_rewind_arguments(
        sub.add_parser("rewind", help="list a session's checkpoints, or go back to one")
    )
    add_checkpoints_arguments(sub.add_parser("checkpoints", help="manage workspace snapshots"))
    sub.add_parser("models", help="list the model presets")
    tiny = sub.add_parser("tiny-model", help="write the tiny random-weight Gemma 4 model")
    tiny.add_argument("path", help="output folder")
    tiny.add_argument(
        "--multimodal",
        action="store_true",
        help="Gemma4ForConditionalGeneration with tiny vision and audio towers",
    )
    _add_agent_arguments(
        sub.add_parser("acp", help="serve the Agent Client Protocol on stdio (editors)"),
        session_resume=False,
    )
    _add_agent_arguments(
        sub.add_parser("mcp-serve", help="serve the agent as an MCP tool on stdio"),
        session_resume=False,
    )
    check = sub.add_parser(
        "sandbox-check", help="probe run_shell's sandbox on this machine and print what holds"
    )
    check.add_argument(
        "--no-network-probe", action="store_true", help="skip the probe that opens a local port"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _start_tracing(args)
        _route_engine_logs(args)
        match args.command:
            case None:
                from .launch import run_tui

                return run_tui(args, engine_flags=add_engine_arguments)
            case "run":
                from .headless import run_headless

                return run_headless(args)
            case "eval":
                from .evals.cli import run_eval

                return run_eval(args)
            case "eval-merge":
                from .evals.cli import run_merge

                return run_merge(args)
            case "eval-compare":
                from .evals.compare import run_compare

                return run_compare(args)
            case "export":
                from .evals.export import run_export

                return run_export(args)
            case "replay":
                from .tui.replay import run_replay

                return run_replay(args)
            case "rewind":
                from .headless.rewind import run_rewind

                return run_rewind(args)
            case "checkpoints":
                from .headless.rewind import run_checkpoints

                return run_checkpoints(args)
            case "models":
                from .agent.engines.presets import print_presets

                print_presets()
                return 0
            case "tiny-model":
                from .agent.engines.tiny import build_tiny_model

                path = build_tiny_model(args.path, multimodal=args.multimodal)
                kind = "multimodal " if args.multimodal else ""
                print(f"wrote the tiny random-weight {kind}Gemma 4 model to {path}")
                return 0
            case "acp":
                from .editors import run_acp

                return run_acp(args)
            case "mcp-serve":
                from .editors.mcp_server import run_mcp_serve

                return run_mcp_serve(args)
            case "sandbox-check":
                from .tools.builtin.sandbox_check import sandbox_check

                return sandbox_check(network_probe=not args.no_network_probe)
            case _:
                raise AssertionError(args.command)
    except AgentError as e:
        print(f"gemma-agent: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gemma-agent: interrupted", file=sys.stderr)
        return 130
    finally:
        _stop_tracing()


def _route_engine_logs(args: argparse.Namespace) -> Path | None:
    """`run` and `eval` print only their own output: vLLM's start-up and shutdown lines go to
    ``.gemma-agent/logs/engine.log`` of the workspace (`eval`: ``engine.log`` in its output
    folder). ``--verbose`` shows them on stderr instead. (The TUI routes its own.)"""
    if args.command not in ("run", "eval", "acp", "mcp-serve") or (
        args.command == "eval" and args.oracle
    ):
        return None
    if getattr(args, "verbose", None):
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")
        return None
    from .launch import route_engine_logs

    workspace = Path(getattr(args, "workspace", None) or ".").expanduser()
    if not workspace.is_dir():
        return None  # the face says what is wrong with it
    if args.command == "eval":
        from .evals.cli import output_folder

        return route_engine_logs(workspace, log_dir=output_folder(args))
    return route_engine_logs(workspace)


def _start_tracing(args: argparse.Namespace) -> None:
    """--otel (or the OTEL_* variables): every agent this command builds is traced."""
    from .agent.tracing import content_wanted, tracing_wanted

    if not tracing_wanted(bool(getattr(args, "otel", None))):
        return
    from .agent.tracing import configure, instrument_all

    instrument_all(
        configure(include_content=content_wanted(bool(getattr(args, "otel_content", None))))
    )


def _stop_tracing() -> None:
    """Flush the spans and metrics of this command (a no-op when it was not traced)."""
    from .agent.tracing import default_tracing, instrument_all

    tracing = default_tracing()
    if tracing is not None:
        instrument_all(None)
        tracing.shutdown()
