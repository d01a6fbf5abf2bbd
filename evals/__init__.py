"""Scripted eval runs on coding tasks: suites, sandboxed grading, the concurrent resumable
runner, pass@k and reports.

    from gemma_agent.evals import AgentSolver, EvalOptions, load_suite, run_suite, select_tasks

    suite = load_suite("repo-tasks")
    summary = await run_suite(
        suite, select_tasks(suite), AgentSolver(engine, trajectories=out / "trajectories"),
        EvalOptions(output=out, concurrency=8), {"suite": suite.name},
    )

The command line is ``gemma-agent eval SUITE`` (see ``evals/cli.py``).
`EvalEnv` drives a suite as an RL environment instead (reset, step, reward; see
docs/training-data.md).
"""

from __future__ import annotations

from .env import EvalEnv, Observation, StepResult
from .grader import Grade, grade
from .loaders import BUILTIN_SUITES, load_suite
from .metrics import pass_at_k, summarize
from .results import SampleResult, read_results
from .runner import EvalOptions, Shard, merge_outputs, run_suite, select_tasks
from .solvers import AgentSolver, OracleSolver, SolveOutcome, Solver
from .tasks import Suite, Task
from .workspace import Workspace

__all__ = [
    "BUILTIN_SUITES",
    "AgentSolver",
    "EvalEnv",
    "EvalOptions",
    "Grade",
    "Observation",
    "OracleSolver",
    "SampleResult",
    "Shard",
    "SolveOutcome",
    "Solver",
    "StepResult",
    "Suite",
    "Task",
    "Workspace",
    "grade",
    "load_suite",
    "merge_outputs",
    "pass_at_k",
    "read_results",
    "run_suite",
    "select_tasks",
    "summarize",
]
