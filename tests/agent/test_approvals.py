"""No path of the SDK waits forever on a person: an approval nobody can answer is a denial.

The model calls ``run_shell`` with a command the default policy asks about; each face that
cannot answer (``run_sync``, ``run``, a ``stream`` consumer that ignores the event, the headless
CLI without a terminal, the eval runner) gets a prompt denial the model reads, and a faces that
does answer is bounded by ``approval_timeout``.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.events import ApprovalRequested, Notice, ToolCallFinished
from gemma_agent.cli import build_parser
from gemma_agent.errors import ConfigError
from gemma_agent.headless import run_headless
from gemma_agent.tools import coding_tools

from .helpers import call

pytestmark = pytest.mark.timeout(60)

RM = call("run_shell", command="rm -rf ~/project")


def make_agent(tmp_path: Path, **kw: Any) -> tuple[Agent, ScriptedEngine]:
    engine = ScriptedEngine([RM, "I could not clean up."])
    kw.setdefault("sessions_dir", tmp_path / "sessions")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    agent = Agent(engine=engine, tools=coding_tools(), workspace=work, compactor=None, **kw)
    return agent, engine


def assert_denied_for_nobody(result_content: str, engine: ScriptedEngine) -> None:
    assert "no one is available" in result_content
    assert "no one is available" in engine.requests[1].prompt_text  # the model read it


def test_run_sync_denies_at_once_without_an_answerer(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path)
    result = agent.run_sync("clean")
    assert result.ok and result.output == "I could not clean up."
    shell = result.turns[1].tool_results[0]  # type: ignore[union-attr]
    assert shell.is_error
    assert_denied_for_nobody(str(shell.content), engine)


async def test_run_and_ignoring_stream_consumer_get_a_denial_and_a_notice(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path)
    events = [e async for e in agent.stream("clean")]  # reads nothing, answers nothing
    assert not [e for e in events if isinstance(e, ApprovalRequested)]
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("run_shell needs approval" in m and "denied" in m for m in notices), notices
    done = next(e for e in events if isinstance(e, ToolCallFinished))
    assert_denied_for_nobody(str(done.result.content), engine)

    agent2, engine2 = make_agent(tmp_path)
    result = await agent2.run("clean")
    assert_denied_for_nobody(str(result.turns[1].tool_results[0].content), engine2)  # type: ignore[union-attr]


async def test_an_answering_consumer_is_bounded_by_approval_timeout(tmp_path: Path) -> None:
    agent, _ = make_agent(tmp_path, approval_timeout=0.2)
    asked: list[ApprovalRequested] = []
    events = []
    async for e in agent.stream("clean", answers_approvals=True):
        events.append(e)
        if isinstance(e, ApprovalRequested):
            asked.append(e)  # a face that shows it and nobody clicks
    assert len(asked) == 1 and asked[0].answer.result() == "deny"
    done = next(e for e in events if isinstance(e, ToolCallFinished))
    assert "within 0.2 s" in str(done.result.content) and done.result.is_error
    assert any("no answer within" in e.message for e in events if isinstance(e, Notice))


async def test_a_hanging_on_approval_callback_is_bounded_too(tmp_path: Path) -> None:
    async def never(request: ApprovalRequested) -> None:
        await asyncio.sleep(3600)

    agent, _ = make_agent(tmp_path, on_approval=never, approval_timeout=0.2)
    result = await agent.run("clean")
    assert "within 0.2 s" in str(result.turns[1].tool_results[0].content)  # type: ignore[union-attr]


async def test_an_answering_consumer_still_decides(tmp_path: Path) -> None:
    agent, engine = make_agent(tmp_path, approval_timeout=30)
    async for e in agent.stream("clean", answers_approvals=True):
        if isinstance(e, ApprovalRequested):
            e.respond("deny")
    assert "The user denied this call" in engine.requests[1].prompt_text


def test_approval_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="approval_timeout"):
        Agent(engine=ScriptedEngine([]), approval_timeout=0)


def test_headless_without_a_terminal_denies(tmp_path: Path) -> None:
    engine = ScriptedEngine([RM, "Not cleaned."])
    out = io.StringIO()
    args = build_parser().parse_args(["run", "clean", "--json", "--workspace", str(tmp_path)])
    code = run_headless(args, engine=engine, tools=list(coding_tools()), out=out)  # type: ignore[arg-type]
    assert code == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    finished = next(x for x in lines if x["kind"] == "tool_call_finished")
    assert "no one is available" in finished["result"]["content"]
    assert any(x["kind"] == "notice" and "denied" in x["message"] for x in lines)


def test_headless_approval_timeout_flag_reaches_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a terminal the person is asked; --approval-timeout bounds the wait."""
    from gemma_agent.headless import app as headless

    async def silent(request: ApprovalRequested) -> None:
        await asyncio.sleep(3600)  # the person walked away

    monkeypatch.setattr(headless, "_interactive", lambda: True)
    monkeypatch.setattr(headless, "_ask_on_terminal", silent)
    engine = ScriptedEngine([RM, "Not cleaned."])
    out = io.StringIO()
    argv = ["run", "clean", "--workspace", str(tmp_path), "--approval-timeout", "0.2"]
    code = run_headless(
        build_parser().parse_args(argv), engine=engine, tools=list(coding_tools()), out=out
    )  # type: ignore[arg-type]
    assert code == 0 and "within 0.2 s" in engine.requests[1].prompt_text
