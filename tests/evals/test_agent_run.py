"""A ScriptedEngine-driven agent solves a HumanEval task end to end: real agent loop, real
workspace-confined tools, real sandboxed grading."""

from __future__ import annotations

import json
from pathlib import Path

from gemma_agent import ScriptedEngine
from gemma_agent.agent.engines.scripted import tool_call
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite
from gemma_agent.evals.solvers import AgentSolver
from gemma_agent.evals.tasks import Suite


async def test_scripted_agent_solves_a_humaneval_task(tmp_path: Path):
    task = load_suite("humaneval").tasks[0]  # has_close_elements
    prompt = task.files["solution.py"].decode()
    wrong = prompt + "    return False\n"
    fix_old = "    return False\n"
    fix_new = (
        "    for i, a in enumerate(numbers):\n"
        "        for b in numbers[i + 1:]:\n"
        "            if abs(a - b) < threshold:\n"
        "                return True\n"
        "    return False\n"
    )
    engine = ScriptedEngine(
        [
            tool_call("read_file", path="solution.py"),
            tool_call("write_file", content=wrong, path="solution.py"),
            tool_call(
                "edit_file", edits=[{"new_text": fix_new, "old_text": fix_old}], path="solution.py"
            ),
            "I implemented has_close_elements with a pairwise check.",
        ]
    )
    out = tmp_path / "out"
    solver = AgentSolver(engine, trajectories=out / "trajectories")
    summary = await run_suite(
        Suite("humaneval", (task,)),
        [task],
        solver,
        EvalOptions(output=out, progress=False),
        {"suite": "humaneval", "model": "scripted"},
    )
    engine.assert_complete()
    # The agent worked in the task's workspace, on the task's prompt.
    assert "has_close_elements" in engine.requests[0].prompt_text
    assert (summary["passed"], summary["errors"]) == (1, 0), (out / "results.jsonl").read_text()
    result = json.loads((out / "results.jsonl").read_text())
    assert result["status"] == "passed" and result["stop_reason"] == "final_answer"
    assert result["steps"] == 4 and result["tool_calls"] == 3 and result["tool_errors"] == 0
    assert result["tokens"]["prompt"] > 0 and result["tokens"]["generated"] > 0
    trajectory = out / result["trajectory"]
    assert trajectory.name == "HumanEval_0-s0.jsonl"
    kinds = [json.loads(line)["type"] for line in trajectory.read_text().splitlines()]
    assert kinds[0] == "meta" and "message" in kinds


async def test_scripted_agent_that_gives_up_fails(tmp_path: Path):
    task = load_suite("humaneval").tasks[1]
    engine = ScriptedEngine(["I cannot do this."])
    out = tmp_path / "out"
    summary = await run_suite(
        Suite("humaneval", (task,)),
        [task],
        AgentSolver(engine, trajectories=out / "trajectories"),
        EvalOptions(output=out, progress=False),
        {"suite": "humaneval"},
    )
    assert (summary["failed"], summary["passed"], summary["errors"]) == (1, 0, 0)


async def test_an_eval_run_never_waits_for_an_approval(tmp_path: Path):
    """With a policy that asks (nobody is there to answer in an eval) the call is denied at once
    and the task finishes; with the default (yolo, sandboxed) the command runs."""
    task = load_suite("humaneval").tasks[2]
    rm = tool_call("run_shell", command="git clean -fdx")  # the policy asks about it
    for approval, expect in (("auto", "no one is available"), (None, "exit_code")):
        engine = ScriptedEngine([rm, "Stopped."])
        out = tmp_path / str(approval)
        options = {"approval": approval} if approval else {}
        solver = AgentSolver(engine, trajectories=out / "t", agent_options=options)
        summary = await run_suite(
            Suite("humaneval", (task,)), [task], solver,
            EvalOptions(output=out, progress=False), {"suite": "humaneval"},
        )  # fmt: skip
        assert (summary["failed"], summary["errors"]) == (1, 0)
        assert expect in engine.requests[1].prompt_text
