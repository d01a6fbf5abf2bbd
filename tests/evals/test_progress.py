"""Quiet faces: the eval progress line and the summary count the same way; `run` and `eval`
send the engine's logs to a file unless --verbose."""

from __future__ import annotations

import io
import json
import logging.config
import os
from pathlib import Path

import pytest
from gemma_agent.cli import _route_engine_logs, build_parser
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite, select_tasks
from gemma_agent.evals.solvers import OracleSolver, SolveOutcome
from gemma_agent.evals.tasks import Task
from gemma_agent.evals.workspace import Workspace
from rich.console import Console

from .helpers import adder_suite


class OneTimeout(OracleSolver):
    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        if task.id == "add-00":
            return SolveOutcome(status="timeout", error="the agent ran past 1 s")
        if task.id == "add-01":
            return SolveOutcome()  # changed nothing: a failure
        return await super().solve(task, workspace, run_id=run_id)


async def test_progress_line_and_summary_agree_on_timeouts(tmp_path: Path) -> None:
    suite = load_suite(str(adder_suite(tmp_path / "suite", 4)))
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    opts = EvalOptions(output=tmp_path / "out", progress=True)
    summary = await run_suite(
        suite, select_tasks(suite), OneTimeout(), opts, {"suite": suite.name}, console=console
    )
    assert (summary["passed"], summary["failed"], summary["timeouts"]) == (2, 1, 1)
    last = buffer.getvalue().strip().splitlines()[-1]
    assert "passed 2 failed 1 timeouts 1 errors 0" in last, last


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMMA_AGENT_ENGINE_LOG", "VLLM_CONFIGURE_LOGGING", "VLLM_LOGGING_CONFIG_PATH",
                 "VLLM_LOGGING_LEVEL"):  # fmt: skip
        monkeypatch.setenv(name, "")  # restored (removed) after the test
        monkeypatch.delenv(name)


def _check_config(log: Path) -> None:
    assert os.environ["GEMMA_AGENT_ENGINE_LOG"] == str(log)  # the engine core's stdout/stderr
    config = json.loads(Path(os.environ["VLLM_LOGGING_CONFIG_PATH"]).read_text())
    assert config["handlers"]["file"]["filename"] == str(log)
    logging.config.dictConfig(config)  # what vLLM does with it: its lines land in the file
    try:
        logging.getLogger("vllm.engine").warning("engine start-up line")
        for handler in logging.getLogger("vllm").handlers:
            handler.flush()
        assert "engine start-up line" in log.read_text()
    finally:
        for handler in logging.getLogger("vllm").handlers:
            handler.close()
        logging.getLogger("vllm").handlers.clear()


def test_run_routes_engine_logs_to_the_workspace(tmp_path: Path, clean_env: None) -> None:
    args = build_parser().parse_args(["run", "task", "--workspace", str(tmp_path)])
    log = _route_engine_logs(args)
    assert log == tmp_path / ".gemma-agent" / "logs" / "engine.log"
    _check_config(log)


def test_eval_routes_engine_logs_to_its_output(tmp_path: Path, clean_env: None) -> None:
    args = build_parser().parse_args(["eval", "humaneval", "--output", str(tmp_path / "o")])
    log = _route_engine_logs(args)
    assert log == tmp_path / "o" / "engine.log"
    _check_config(log)


def test_verbose_leaves_them_on_stderr(tmp_path: Path, clean_env: None) -> None:
    args = build_parser().parse_args(["run", "task", "--verbose", "--workspace", str(tmp_path)])
    assert _route_engine_logs(args) is None
    assert "VLLM_LOGGING_CONFIG_PATH" not in os.environ
    assert os.environ["VLLM_LOGGING_LEVEL"] == "INFO"
