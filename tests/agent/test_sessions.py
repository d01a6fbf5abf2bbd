"""Sessions: the JSONL log, resume, torn lines, and a SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine, tool
from gemma_agent.agent.messages import ModelTurn, UserMessage
from gemma_agent.agent.session import load_session
from gemma_agent.errors import ConfigError

from .helpers import call


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def agent_for(tmp_path: Path, outputs: list[Any]) -> tuple[Agent, ScriptedEngine]:
    engine = ScriptedEngine(outputs)
    return Agent(engine=engine, tools=[echo], workspace=tmp_path, compactor=None), engine


def dumped(messages: list[Any]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


async def test_log_is_written_and_resume_rebuilds_history_exactly(tmp_path: Path) -> None:
    agent, _ = agent_for(tmp_path, [call("echo", text="a"), call("echo", text="b"), "done"])
    result = await agent.run("task")
    path = tmp_path / ".gemma-agent" / "sessions" / f"{result.session_id}.jsonl"
    records = [json.loads(x) for x in path.read_text().splitlines()]
    types = [r["type"] for r in records]
    assert types[0] == "meta" and "turn_pending" in types and "tool_result" in types
    assert not any(r.get("event", {}).get("kind", "").endswith("_delta") for r in records)
    state = load_session(path)
    assert dumped(state.history) == dumped(result.turns)
    # A fresh agent (another process, say) continues the session from its log.
    agent2, engine2 = agent_for(tmp_path, ["continued"])
    again = await agent2.resume(result.session_id, "one more")
    assert again.session_id == result.session_id and again.output == "continued"
    assert dumped(again.turns[: len(result.turns)]) == dumped(result.turns)
    assert isinstance(again.turns[-2], UserMessage) and again.turns[-2].content == "one more"
    assert 'response:echo{value:<|"|>b<|"|>}' in engine2.requests[0].prompt_text
    assert dumped(load_session(path).history) == dumped(again.turns)


async def test_torn_last_line_is_tolerated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    agent, _ = agent_for(tmp_path, [call("echo", text="a"), "done"])
    result = await agent.run("task")
    path = agent.sessions_dir / f"{result.session_id}.jsonl"
    torn = '{"type":"message","message":{"role":"user","con'  # a crash in the middle of a write
    path.write_text(path.read_text() + torn)
    state = load_session(path)
    assert dumped(state.history) == dumped(result.turns)
    assert len(state.warnings) == 1 and "torn" in state.warnings[0]
    agent2, _ = agent_for(tmp_path, ["again"])
    events = [e async for e in agent2.stream("more", session_id=result.session_id)]
    assert any(e.kind == "notice" and "torn" in e.message for e in events)


async def test_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    agent, _ = agent_for(tmp_path, ["done"])
    result = await agent.run("task")
    path = agent.sessions_dir / f"{result.session_id}.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(1, "{not json")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_session(path)


async def test_resume_unknown_session_is_a_config_error(tmp_path: Path) -> None:
    agent, _ = agent_for(tmp_path, [])
    with pytest.raises(ConfigError, match="No session log"):
        await agent.resume("20990101-000000-abcdef")


SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from gemma_agent import Agent, ScriptedEngine, tool

    @tool
    async def work(n: int) -> str:
        '''Do step n.'''
        print(f"start {n}", flush=True)
        await asyncio.sleep(0.02)
        return f"result {n}"

    S = '<|"|>'
    outputs = [f"<|tool_call>call:work{{n:{i}}}<tool_call|>" for i in range(1000)]
    engine = ScriptedEngine(outputs, token_delay=0.002)
    agent = Agent(engine=engine, tools=[work], workspace=sys.argv[1], compactor=None,
                  max_steps=1000, loop_stop_after=1000)
    asyncio.run(agent.run("work through the steps"))
    """
)


def test_sigkill_mid_run_loses_nothing_before_the_last_completed_call(tmp_path: Path) -> None:
    script = tmp_path / "agent_script.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            started.append(int(line.split()[1]))
            if started[-1] == 12:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    (sid,) = [p.stem for p in (tmp_path / ".gemma-agent" / "sessions").glob("*.jsonl")]
    # Call n starts only after call n-1's result was logged (flushed): 0..11 must survive.
    state = load_session(tmp_path / ".gemma-agent" / "sessions" / f"{sid}.jsonl")
    turns = [m for m in state.history if isinstance(m, ModelTurn)]
    results = [r.content for t in turns for r in t.tool_results if not r.is_error]
    assert results[:12] == [f"result {i}" for i in range(12)]
    assert all(len(t.tool_results) == len(t.tool_calls) for t in turns)  # history is valid

    @tool
    async def work(n: int) -> str:
        """Do step n."""
        return f"result {n}"

    engine = ScriptedEngine(["All steps done."])
    agent = Agent(engine=engine, tools=[work], workspace=tmp_path, compactor=None)
    result = agent.run_sync(None, session_id=sid)
    assert result.output == "All steps done." and result.reason == "final_answer"
    prompt = engine.requests[0].prompt_text
    for i in range(12):
        assert f"result {i}" in prompt
    assert dumped(result.turns[:-1]) == dumped(state.history)


async def test_a_session_is_written_with_its_first_record_not_before(tmp_path: Path) -> None:
    agent = Agent(engine=ScriptedEngine(["Hi."]), workspace=tmp_path, sessions_dir=tmp_path / "s")
    session_id = agent.new_session()  # an editor's session/new
    path = agent.session_file(session_id)
    assert not path.exists() and agent.sessions() == []
    await agent.run("hello", session_id=session_id)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0]["type"] == "meta" and records[0]["session_id"] == session_id
    assert load_session(path).history[-1].text == "Hi."  # type: ignore[union-attr]
    await agent.aclose()
    unused = Agent(engine=ScriptedEngine([]), workspace=tmp_path, sessions_dir=tmp_path / "u")
    unused.new_session()
    await unused.aclose()
    assert not (tmp_path / "u").exists() or not list((tmp_path / "u").iterdir())
