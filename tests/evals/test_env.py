"""EvalEnv: an eval suite driven as an environment. Its prompts are the ids the agent loop sends
an engine, and its reward is the real grader's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gemma_agent import ScriptedEngine
from gemma_agent.agent import ModelTurn, UserMessage
from gemma_agent.agent.engines.scripted import tool_call
from gemma_agent.evals import EvalEnv, Observation, StepResult
from gemma_agent.evals.export import trajectories
from gemma_agent.evals.loaders import load_suite
from gemma_agent.evals.runner import EvalOptions, run_suite
from gemma_agent.evals.solvers import AgentSolver
from gemma_agent.evals.tasks import Suite, Task


def _solving_outputs(task: Task) -> list[str]:
    """HumanEval/0 solved in three tool rounds (as in test_agent_run.py), then an answer."""
    wrong = task.files["solution.py"].decode() + "    return False\n"
    fix_new = (
        "    for i, a in enumerate(numbers):\n"
        "        for b in numbers[i + 1:]:\n"
        "            if abs(a - b) < threshold:\n"
        "                return True\n"
        "    return False\n"
    )
    edit = [{"new_text": fix_new, "old_text": "    return False\n"}]
    return [
        tool_call("read_file", path="solution.py"),
        tool_call("write_file", content=wrong, path="solution.py"),
        tool_call("edit_file", edits=edit, path="solution.py"),
        "I implemented has_close_elements with a pairwise check.",
    ]


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir())


async def _drive(env: EvalEnv, outputs: list[str] | list[list[int]], **reset: object):
    observations = [await env.reset(**reset)]  # type: ignore[arg-type]
    for i, output in enumerate(outputs):
        result = await env.step(output)
        assert result.done == (i == len(outputs) - 1)
        if result.observation is None:
            return observations, result
        observations.append(result.observation)
    raise AssertionError("the episode did not end")


@pytest.mark.parametrize("thinking, as_ids", [(False, False), (True, True)])
async def test_env_prompts_are_the_agent_loop_requests(
    tmp_path: Path, thinking: bool, as_ids: bool
):
    """The same outputs through AgentSolver on ScriptedEngine and through EvalEnv: every prompt
    the env hands out is the one the engine received, and the reward is the eval's verdict."""
    task = load_suite("humaneval").tasks[0]
    options = {"thinking": True} if thinking else {}
    engine = ScriptedEngine(_solving_outputs(task))
    out = tmp_path / "eval"
    await run_suite(
        Suite("humaneval", (task,)),
        [task],
        AgentSolver(engine, trajectories=out / "trajectories", agent_options=options),
        EvalOptions(output=out, progress=False),
        {"suite": "humaneval"},
    )
    engine.assert_complete()
    evaluated = json.loads((out / "results.jsonl").read_text())
    assert evaluated["passed"] is True

    outputs: list[str] | list[list[int]] = [r.output for r in engine.requests]  # stops added
    if as_ids:
        outputs = [engine.tokenizer.encode(text) for text in outputs]  # type: ignore[misc]
    env = EvalEnv([task], ScriptedEngine(), agent_options=options, trajectories=tmp_path / "env")
    observations, last = await _drive(env, outputs, task=task.id)

    assert [o.prompt_ids for o in observations] == [list(r.prompt_ids) for r in engine.requests]
    assert all(
        o.max_tokens == r.request.max_tokens
        for o, r in zip(observations, engine.requests, strict=True)
    )
    assert last.reward == 1.0 and last.passed is evaluated["passed"]
    assert (last.tests_run, last.tests_failed) == (evaluated["tests_run"], 0)
    assert last.outcome is not None and last.outcome.stop_reason == "final_answer"
    assert (last.outcome.steps, last.outcome.tool_calls) == (evaluated["steps"], 3)
    # Each prompt is an exact append: the previous prompt, the output, the tool responses.
    for before, after, output in zip(observations, observations[1:], outputs, strict=False):
        ids = output if as_ids else engine.tokenizer.encode(output)  # type: ignore[arg-type]
        assert after.prompt_ids[: len(before.prompt_ids) + len(ids)] == before.prompt_ids + ids
    # The typed history: the task, then one turn per tool round with its results.
    first, third = observations[0].messages, observations[2].messages
    assert [type(m) for m in first] == [UserMessage] and first[0].content == task.instruction
    assert isinstance(turn := third[-1], ModelTurn) and turn.tool_calls[0].name == "write_file"
    assert turn.tool_results and not turn.tool_results[0].is_error
    assert "has_close_elements" in observations[0].text


async def test_the_env_log_exports_the_episode_token_for_token(tmp_path: Path):
    task = load_suite("humaneval").tasks[0]
    env = EvalEnv([task], tokenizer="byte", variant="E4B", trajectories=tmp_path / "logs")
    observations, last = await _drive(env, _solving_outputs(task), task=0, sample=2)
    log = tmp_path / "logs" / "HumanEval_0-s2.jsonl"
    records = list(trajectories([log], split_turns=True, tokenizer="byte"))
    assert [r["input_ids"] for r in records[-1:]] == [
        observations[-1].prompt_ids + last.completion_ids
    ]
    assert len(records) == len(observations)


async def test_a_solution_that_fails_the_hidden_tests_gets_reward_zero(tmp_path: Path):
    task = load_suite("humaneval").tasks[0]
    wrong = task.files["solution.py"].decode() + "    return False\n"
    outputs = [tool_call("write_file", content=wrong, path="solution.py"), "Done."]
    async with EvalEnv([task], ScriptedEngine(), workdir=tmp_path) as env:
        _, last = await _drive(env, outputs)
    assert (last.reward, last.passed, last.grade and last.grade.status) == (0.0, False, "failed")
    assert last.tests_run > 0 and last.tests_failed > 0
    assert _entries(tmp_path) == []  # the workspace is gone after the episode


async def test_a_custom_reward_and_an_agent_that_never_finishes(tmp_path: Path):
    """max_steps ends the run; the runner grades it anyway, and so does the env."""
    task = load_suite("humaneval").tasks[1]
    seen: list[object] = []

    def reward(grade, outcome) -> float:
        seen.append((grade.status, outcome.stop_reason))
        return -1.0

    env = EvalEnv(
        [task], ScriptedEngine(), agent_options={"max_steps": 1}, reward=reward, workdir=tmp_path
    )
    obs = await env.reset()
    result = await env.step(tool_call("read_file", path="solution.py"))
    assert isinstance(result, StepResult) and result.done and result.reward == -1.0
    assert seen == [("failed", "max_steps")] and obs.step == 0


async def test_misuse_and_close_mid_episode(tmp_path: Path):
    task = load_suite("humaneval").tasks[0]
    env = EvalEnv([task], ScriptedEngine(), workdir=tmp_path)
    with pytest.raises(RuntimeError, match="reset"):
        await env.step("hi")
    obs = await env.reset("HumanEval/0")
    assert isinstance(obs, Observation) and obs.stop_token_ids
    step = await env.step(tool_call("list_dir", path="."))
    assert not step.done and step.observation is not None and step.observation.step == 1
    assert "solution.py" in step.observation.text
    assert len(_entries(tmp_path)) == 1
    await env.close()  # the run is cancelled, the workspace removed
    assert _entries(tmp_path) == []
    with pytest.raises(RuntimeError):
        await env.step("hi")
    with pytest.raises(KeyError):
        await env.reset("nope")
