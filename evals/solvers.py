"""Solvers fill a prepared workspace: the agent (one shared engine) or the oracle.

A solver never grades; the runner grades whatever the solver left in the workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import EngineUnavailable
from .results import Tokens
from .tasks import Task
from .workspace import Workspace, WorkspaceError

if TYPE_CHECKING:
    from ..agent.agent import Agent
    from ..agent.engines.base import Engine
    from ..tools.base import Tool

SolveStatus = Literal["done", "error", "timeout"]

INSTRUCTIONS = """\
You are solving a programming task in the workspace, a folder holding a small Python project.
Read the files you need, make the change with the file tools, and run the code or the tests
with run_shell (python and pytest are on PATH) to check your work. The workspace is all you
can change; there is no network. Hidden tests run after you finish, so leave the code in a
working state. When you are done, answer with one short paragraph saying what you changed."""


@dataclass
class SolveOutcome:
    status: SolveStatus = "done"
    steps: int = 0
    tokens: Tokens = field(default_factory=Tokens)
    tool_calls: int = 0
    tool_errors: int = 0
    seconds: float = 0.0
    stop_reason: str | None = None
    error: str | None = None
    infra: bool = False  # the harness or engine failed, not the agent's attempt
    trajectory: Path | None = None


class Solver(Protocol):
    name: str

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome: ...


class OracleSolver:
    """Applies each task's reference solution: every shipped suite must score 100% with it."""

    name = "oracle"

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        start = time.monotonic()
        try:
            await workspace.apply_reference(task)
        except WorkspaceError as e:
            return SolveOutcome("error", error=str(e), infra=True, stop_reason="oracle")
        return SolveOutcome(seconds=time.monotonic() - start, stop_reason="oracle")


def run_id_for(task_id: str, sample: int) -> str:
    """A file-name-safe id per task-sample ("HumanEval/3", 0 -> "HumanEval_3-s0")."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_id).strip("._") or "task"
    return f"{slug}-s{sample}"


def _default_tools() -> list[Tool]:
    from ..tools.builtin import coding_tools

    return list(coding_tools())


@dataclass
class AgentSolver:
    """Runs `gemma_agent.Agent` with the workspace-confined coding tools on one shared engine.

    ``agent_options`` go to `Agent` as they are (thinking, thinking_budget, max_steps,
    tool_choice, ...). The agent's session log of each run lands in ``trajectories``.
    """

    engine: Engine
    trajectories: Path
    agent_options: dict[str, Any] = field(default_factory=dict)
    tools: Callable[[], Sequence[Tool]] = _default_tools
    instructions: str = INSTRUCTIONS
    name: str = "agent"

    def agent_for(self, task: Task, workspace: Workspace) -> Agent:
        """The agent that solves ``task`` in ``workspace`` (one per task-sample)."""
        from ..agent.agent import Agent
        from ..tools import ApprovalPolicy

        options: dict[str, Any] = {
            # Unattended: the tools are confined to the workspace and sandboxed. No store: the
            # user's remembered approvals neither apply here nor collect eval workspaces. With
            # another policy, nobody answers: asked calls are denied at once.
            "approval": ApprovalPolicy("yolo", workspace=workspace.work),
            # A fresh sandbox per task: nothing to rewind, so no snapshots (agent_options may
            # turn them back on).
            "checkpoints": False,
            "time_limit": task.agent_timeout,
            **self.agent_options,
        }
        return Agent(
            engine=self.engine,
            tools=list(self.tools()),
            instructions=self.instructions,
            workspace=workspace.work,
            sessions_dir=self.trajectories,
            **options,
        )

    async def solve(self, task: Task, workspace: Workspace, *, run_id: str) -> SolveOutcome:
        from ..agent.events import ToolCallFinished

        self.trajectories.mkdir(parents=True, exist_ok=True)
        log_path = self.trajectories / f"{run_id}.jsonl"
        log_path.unlink(missing_ok=True)  # a torn log of a killed run: this sample starts over
        agent = self.agent_for(task, workspace)
        out = SolveOutcome(trajectory=log_path)

        def count(event: object) -> None:
            if isinstance(event, ToolCallFinished):
                out.tool_calls += 1
                out.tool_errors += event.result.is_error

        start = time.monotonic()
        try:
            # The agent stops itself at time_limit; this is the backstop for a hung engine.
            async with agent, asyncio.timeout(task.agent_timeout + 30):
                with _task_span(task.id, run_id):  # traced: the task's span parents its run
                    result = await agent.run(task.instruction, on_event=count)
        except TimeoutError:
            out.status, out.error = "timeout", f"the agent ran past {task.agent_timeout:g} s"
        except EngineUnavailable:
            raise  # the shared engine is gone: the run stops (finished tasks are saved)
        except Exception as e:  # one task's crash must not end the run: an infra error
            out.status, out.infra = "error", True
            out.error = f"agent crashed: {type(e).__name__}: {e}"
        else:
            u = result.usage
            out.tokens = Tokens(
                prompt=u.prompt_tokens,
                cached=u.cached_prompt_tokens,
                generated=u.generated_tokens,
                thinking=u.thinking_tokens,
            )
            out.steps, out.stop_reason, out.error = result.steps, result.reason, result.error
            if result.reason == "time_limit":
                out.status = "timeout"
                out.error = out.error or f"the agent ran past {task.agent_timeout:g} s"
            elif result.reason == "engine_error":
                out.status, out.infra = "error", True
        out.seconds = time.monotonic() - start
        # The agent names its session log by its own session id; file it under the
        # task-sample's name so results.jsonl and trajectories/ line up.
        written = self.trajectories / f"{agent.session_id}.jsonl" if agent.session_id else None
        if written is not None and written.exists():
            written.replace(log_path)
            spill = written.with_suffix(".spill")  # clipped tool outputs kept in full
            if spill.is_dir():
                target = log_path.with_suffix(".spill")
                shutil.rmtree(target, ignore_errors=True)
                spill.replace(target)
        else:
            out.trajectory = None
        return out


def _task_span(task_id: str, run_id: str) -> contextlib.AbstractContextManager[Any]:
    """An ``eval_task`` span around one sample's run when tracing is on (--otel)."""
    from ..agent.tracing import default_tracing

    tracing = default_tracing()
    if tracing is None:
        return contextlib.nullcontext()
    attrs = {"gemma_agent.eval.task_id": task_id, "gemma_agent.eval.run_id": run_id}
    return tracing.span(f"eval_task {task_id}", attrs)
