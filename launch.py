"""Wiring of `gemma-agent` without a subcommand (part of the CLI): from the parsed flags to a
running TUI. Builds the engine, the tools and the agent; the TUI itself knows none of them
beyond the SDK's public surface.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .agent import (
    Engine,
    create_engine,
    load_hooks,
    load_media,
    model_problem,
    saved_model,
)
from .agent.session import session_path
from .errors import ConfigError
from .tools.builtin import coding_tools, sandbox_status, web_tools

# Engine flags that belong to one model: `/model` does not carry them over from the launch.
MODEL_SETTINGS = frozenset(
    {"model", "variant", "max_model_len", "kv_cache_dtype", "enable_expert_parallel"}
)


def run_tui(
    args: argparse.Namespace, *, engine_flags: Callable[[argparse.ArgumentParser], None]
) -> int:
    """`gemma-agent` without a subcommand: the TUI. The engine starts inside the app;
    ``engine_flags`` adds the CLI's engine flags to the parser of `/model`'s arguments."""
    from .tui.app import GemmaApp
    from .tui.backend import AgentBackend, Backend
    from .tui.config import load_settings

    workspace = Path(args.workspace or ".").expanduser().resolve()
    if not workspace.is_dir():
        raise ConfigError(f"--workspace {args.workspace}: not a folder; create it or pick another.")
    settings = load_settings(
        workspace,
        overrides={
            "model": getattr(args, "model", None),
            "variant": getattr(args, "variant", None),
            "approval": getattr(args, "approval", None),
            "thinking": getattr(args, "thinking", None),
            "thinking_budget": getattr(args, "thinking_budget", None),
            "tool_choice": getattr(args, "tool_choice", None),
            "max_steps": getattr(args, "max_steps", None),
        },
    )
    # --resume without --model: the model the session last ran on (a session can switch).
    resume = getattr(args, "resume", None)
    resumed_on = None
    if resume and getattr(args, "model", None) is None:
        resumed_on = session_model(workspace, resume)
        if resumed_on is not None:
            args.model = resumed_on[0]
            if getattr(args, "variant", None) is None:
                args.variant = resumed_on[1]
    # The config file's model applies when no --model was given.
    if getattr(args, "model", None) is None and settings.model is not None:
        args.model = settings.model
    if getattr(args, "variant", None) is None and settings.variant is not None:
        args.variant = settings.variant
    attachments = [load_media(p) for p in [*(args.image or []), *(args.audio or [])]]
    route_engine_logs(workspace)

    async def start() -> Backend:
        from .agent import Agent
        from .agent.hooks import hook_trust_request
        from .tools import start_mcp_servers

        engine = await create_engine(args)
        mcp = None
        try:
            # The configured MCP servers start in parallel; failures are notices in the app.
            mcp, notices, mcp_config = await start_mcp_servers(
                workspace, trust=bool(getattr(args, "trust_mcp", None))
            )
            # A project hook set not answered yet: the app asks (a modal), once per change.
            trust = bool(getattr(args, "trust_hooks", None))
            hooks, hook_notices = load_hooks(workspace, trust=trust, ask=True)
            notices += hook_notices
            hook_trust = None if trust else hook_trust_request(workspace, hooks)
            agent = Agent(
                engine=engine,
                tools=[*coding_tools(background=True), *web_tools(), *mcp.tools()],
                workspace=workspace,
                thinking=settings.thinking,
                thinking_budget=settings.thinking_budget,
                tool_choice=settings.tool_choice,
                approval=settings.approval,
                approval_timeout=getattr(args, "approval_timeout", None),
                max_steps=settings.max_steps,
                close_engine=True,  # closed with the agent when the app leaves
                hooks=hooks,
                memory=getattr(args, "memory", None) is not False,  # AGENTS.md
                skills=getattr(args, "memory", None) is not False,
                **subagent_options(args, settings),
            )
        except BaseException:
            if mcp is not None:
                await mcp.aclose()
            await engine.aclose()
            raise
        return AgentBackend(
            agent,
            thinking_budget=settings.thinking_budget,
            mcp=mcp,
            mcp_config=mcp_config,
            notices=notices,
            hook_trust=hook_trust,
        )

    async def switch_engine(changes: dict[str, Any]) -> Engine:
        """`/model`: the launch's engine flags (engine, base URL, memory, parallelism, media)
        with the model's own settings replaced by what /model gave."""
        return await create_engine(switch_settings(args, changes))

    # What starts the launch model again (a failed `/model --replace` does).
    launch_model = {k: v for k, v in vars(args).items() if k in MODEL_SETTINGS and v is not None}
    starting = f"Starting the engine ({args.model or 'default model'})"
    if resumed_on is not None:
        starting = f"Starting the engine ({args.model}, the model session {resume} last used)"
    sandbox = sandbox_status()  # coding_tools() above use sandbox="auto"
    app = GemmaApp(
        backend_factory=start,
        settings=settings,
        workspace=workspace,
        resume=getattr(args, "resume", None),
        attachments=attachments,
        starting_text=starting,
        engine_factory=switch_engine,
        engine_settings=launch_model,
        engine_flags=engine_flags,
        sandbox_off=None if sandbox.available else sandbox.detail,
    )
    if getattr(args, "plan", None):
        app.plan_mode = True  # the status bar shows it once the engine is up
    stdin = sys.__stdin__
    if stdin is not None and stdin.isatty():
        threading.Thread(
            target=watch_terminal, args=(stdin.fileno(),), name="terminal-watch", daemon=True
        ).start()
    code = app.run()
    return code or 0


def subagent_options(args: argparse.Namespace, settings: Any = None) -> dict[str, Any]:
    """The task tool's settings for an Agent: on unless ``--no-subagents`` (or the config
    file's ``subagents = false``, where the settings have it); ``--max-subagents N`` (or
    ``max_subagents``) children at once."""
    on = getattr(args, "subagents", None)
    if on is None:
        on = getattr(settings, "subagents", True)
    most = getattr(args, "max_subagents", None) or getattr(settings, "max_subagents", None) or 4
    return {"subagents": bool(on), "max_subagents": int(most)}


def switch_settings(launch: argparse.Namespace, changes: dict[str, Any]) -> dict[str, Any]:
    """The engine settings for `/model`: the launch's flags (engine, base URL, GPU memory,
    parallelism, media) without the ones that belong to the old model, then what /model gave."""
    kept = {k: v for k, v in vars(launch).items() if k not in MODEL_SETTINGS and v is not None}
    return {**kept, **changes, "quiet": True}


def session_model(workspace: Path, session_id: str) -> tuple[str, str | None] | None:
    """The model (and variant) a saved session last ran on, if it can be started again (a
    preset, tiny, an existing folder or an HF id); None otherwise (the usual model applies)."""
    try:
        path = session_path(workspace / ".gemma-agent" / "sessions", session_id)
    except ConfigError:
        return None
    found = saved_model(path)
    if found is None or "://" in found[0] or model_problem(*found) is not None:
        return None
    return found


def route_engine_logs(workspace: Path, *, log_dir: Path | None = None) -> Path:
    """Send vLLM's logs (ours and its engine-core child's) to a file: on the terminal they
    would draw over the screen (TUI) or bury the answer (`run`, `eval`). The file is
    ``.gemma-agent/logs/engine.log`` of the workspace, or ``engine.log`` in ``log_dir`` (an
    eval's output folder). Returns the log path (shown in engine error cards)."""
    log_dir = log_dir if log_dir is not None else workspace / ".gemma-agent" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "engine.log"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}
        },
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    config_path = log_dir / "engine-logging.json"
    config_path.write_text(json.dumps(config))
    os.environ.setdefault("GEMMA_AGENT_ENGINE_LOG", str(path))  # the engine core's own output
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", str(config_path))
    return path


def watch_terminal(fd: int) -> None:
    """Leave when the terminal hangs up (its window closed) without a SIGHUP reaching us, as
    under `make run`: Textual's writer thread dies on EIO and the UI would block forever at full
    CPU. Completed turns are already on disk (sessions fsync at turn boundaries)."""
    while True:
        time.sleep(1.0)
        try:
            os.tcgetpgrp(fd)
        except OSError:
            for child in multiprocessing.active_children():  # the engine core
                child.terminate()
            os._exit(129)
