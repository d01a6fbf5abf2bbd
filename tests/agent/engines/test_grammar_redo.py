"""A stream that breaks mid-way while a grammar is active (tool_choice names a tool) cannot be
resumed as an append: the step is redone from the start on another replica, with a Notice, and
the run goes on. Against fake replicas on loopback (a connection cut mid-body), and against two
real `vllm serve` replicas of the tiny model, one of them killed with SIGKILL mid-generation."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
from gemma_agent import Agent
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.routing import rendezvous_score
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.agent.events import Event, Notice, RunFinished, ThinkingDelta, TurnFinished
from gemma_agent.agent.messages import ModelTurn
from gemma_agent.agent.session import load_session

from .conftest import API_KEY, kill_group, serving
from .fakeserver import Answer, FakeReplica, Seen, Stream, completion, serve_fake

pytestmark = pytest.mark.asyncio(loop_scope="session")
KILL_AFTER = 32  # thought deltas into a step: 224 of its 256 tokens are still to come (~1 s)


async def look() -> str:  # no arguments: noise cannot ramble inside an open string
    """Look around."""
    return "nothing here"


def check_log(agent: Agent, session_id: str, turns: list[ModelTurn]) -> None:
    """The session log loads, holds every committed turn once, and the redo's Notice."""
    state = load_session(agent.session_file(session_id))
    assert not state.warnings, state.warnings
    logged = [m.id for m in state.history if isinstance(m, ModelTurn)]
    assert logged == [t.id for t in turns]  # in order, each once, no partial turn
    notices = [e for e in state.events if e.get("kind") == "notice"]
    assert any("redone from the start" in e["message"] for e in notices), notices


async def test_a_broken_grammar_stream_is_redone_on_the_other_replica(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    tok = HFTokenizer(tiny_model_path)
    call = tok.encode("<|tool_call>call:look{}<tool_call|>")
    # The first request streams a thought and half a call, then the connection is cut.
    cut = tok.encode("<|channel>thought\nI will look first.<channel|><|tool_call>call:lo")
    order: list[Seen] = []
    lock = threading.Lock()

    def answer(seen: Seen) -> Answer:
        with lock:
            order.append(seen)
            first = len(order) == 1
        if first:
            return Stream(completion(cut + call)[: len(cut)], cut=True)
        return Stream(completion(call))

    with contextlib.ExitStack() as stack:
        replicas: list[FakeReplica] = [
            stack.enter_context(contextlib.contextmanager(serve_fake)(answer, host))
            for host in ("127.0.0.1", "127.0.0.2")
        ]
        engine = await OpenAIHTTPEngine.connect(
            [r.url for r in replicas], tok, variant="tiny", backoff_s=0.01
        )
        agent = Agent(
            engine=engine,
            tools=[look],
            tool_choice="look",  # a grammar on every request
            thinking=True,
            max_steps=2,
            workspace=tmp_path,
        )
        events = [e async for e in agent.stream("look around")]
        await engine.aclose()

    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.reason == "max_steps", finished.error
    redone = [e for e in events if isinstance(e, Notice) and "redone" in e.message]
    assert len(redone) == 1 and redone[0].step == 1 and redone[0].level == "warning"
    # The broken attempt's thought was streamed, then superseded by the redone turn.
    thought = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert "I will look first." in thought
    turns = [e.turn for e in events if isinstance(e, TurnFinished)]
    assert [[c.name for c in t.tool_calls] for t in turns] == [["look"], ["look"]]
    assert all(len(t.tool_results) == 1 and not t.tool_results[0].is_error for t in turns)
    assert not any("look first" in (t.reasoning or "") for t in turns)

    # The redo is the same request from the start, on the replica that did not break.
    first, again = order[0], order[1]
    assert again.body["prompt"] == first.body["prompt"]
    assert again.body["max_tokens"] == first.body["max_tokens"]
    assert "grammar" in again.body["structured_outputs"]
    broke = next(n for n, r in enumerate(replicas) if any(s is first for s in r.seen))
    assert not any(s is again for s in replicas[broke].seen)

    # Usage: each turn's own request; the run's totals count the broken request too.
    assert all(t.usage is not None and t.usage.generated_tokens == len(call) for t in turns)
    assert finished.usage is not None
    assert finished.usage.requests == 3
    assert finished.usage.generated_tokens == len(cut) + 2 * len(call)
    started = events[0]
    assert started.kind == "run_started"
    check_log(agent, started.session_id, turns)


async def test_redos_are_bounded(tiny_model_path: Path, tmp_path: Path) -> None:
    """Streams that break every time: two redos, then the run ends with engine_error."""
    tok = HFTokenizer(tiny_model_path)
    cut = tok.encode("<|tool_call>call:lo")
    with contextlib.ExitStack() as stack:
        replicas: list[FakeReplica] = [
            stack.enter_context(
                contextlib.contextmanager(serve_fake)(
                    lambda seen: Stream(completion(cut + cut)[: len(cut)], cut=True), host
                )
            )
            for host in ("127.0.0.1", "127.0.0.2")
        ]
        engine = await OpenAIHTTPEngine.connect(
            [r.url for r in replicas], tok, variant="tiny", backoff_s=0.01
        )
        agent = Agent(engine=engine, tools=[look], tool_choice="look", workspace=tmp_path)
        events = [e async for e in agent.stream("look around")]
        await engine.aclose()
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.reason == "engine_error"
    assert finished.error is not None and finished.error.startswith("StreamBroken")
    redone = [e for e in events if isinstance(e, Notice) and "redone" in e.message]
    assert [n.message.split("(attempt ")[1][:6] for n in redone] == ["2 of 3", "3 of 3"]
    assert sum(len(r.seen) for r in replicas) == 3
    assert not any(isinstance(e, TurnFinished) for e in events)


# -- two real replicas -----------------------------------------------------------------------


async def run_and_kill(
    primary: str, victim: str, proc: subprocess.Popen[bytes], model: Path, workspace: Path
) -> tuple[Agent, str, OpenAIHTTPEngine, list[tuple[int, dict[str, int]]], list[Event]]:
    """A session placed on ``victim``, whose replica is SIGKILLed deep in a long thought."""
    engine = await OpenAIHTTPEngine.connect(
        [primary, victim], HFTokenizer(model), variant="tiny", model="tiny", api_key=API_KEY,
        backoff_s=0.2,
    )  # fmt: skip
    agent = Agent(
        engine=engine,
        tools=[look],
        tool_choice="look",  # a grammar on every request
        thinking=True,  # the tiny model's noise rambles in its thought: a long generation
        temperature=0.0,
        max_steps=4,
        max_output_tokens=256,
        max_redecodes=0,
        workspace=workspace,
    )
    # A session placed on the replica this test kills (the other serves the whole session).
    session_id = agent.new_session()
    while rendezvous_score(session_id, victim) < rendezvous_score(session_id, primary):
        session_id = agent.new_session()
    killed: list[tuple[int, dict[str, int]]] = []  # the step, and the requests in flight
    deltas: Counter[int] = Counter()  # thought deltas per step

    def on_emit(event: Event) -> None:
        if isinstance(event, ThinkingDelta) and not killed:
            deltas[event.step] += 1
            # Deep in a long thought (the prompt holds the workspace path, so which step
            # rambles varies; a short thought may already be sent whole): SIGKILL the replica.
            if deltas[event.step] == KILL_AFTER:
                killed.append((event.step, engine.in_flight()))
                kill_group(proc, signal.SIGKILL)

    try:
        events = [
            e async for e in agent.stream("look around", session_id=session_id, on_emit=on_emit)
        ]
    finally:
        proc.wait(30)
        await engine.aclose()
    return agent, session_id, engine, killed, events


@pytest.mark.engine
async def test_a_replica_killed_mid_generation_with_a_grammar(
    vllm_server: str, tiny_model_path: Path, tmp_path: Path
) -> None:
    # On a loaded machine vllm serve may send a whole step in one burst at its end, so the kill
    # finds nothing left to break: then the scenario is tried again on a fresh replica.
    redone: list[Notice] = []
    for attempt in range(3):
        workspace = tmp_path / str(attempt)
        workspace.mkdir()
        with serving(tiny_model_path, host="127.0.0.2") as (victim, proc):
            agent, session_id, engine, killed, events = await run_and_kill(
                vllm_server, victim, proc, tiny_model_path, workspace
            )
        finished = events[-1]
        assert isinstance(finished, RunFinished)
        assert killed and killed[0][1][victim] == 1, f"no long thought on the victim: {killed}"
        assert finished.reason in ("max_steps", "loop_detected", "final_answer"), finished.error
        redone = [
            e for e in events if isinstance(e, Notice) and "redone from the start" in e.message
        ]
        if redone:
            break
        # Not broken: the step's whole stream had arrived before the kill; it finished from
        # its one request (nothing was resumed or redone).
        assert any(isinstance(e, TurnFinished) and e.step == killed[0][0] for e in events)
        assert finished.usage is not None and finished.usage.requests == finished.steps
    else:
        # vllm serve on a busy CPU sends a long step in one burst at its end (measured: with one
        # busy process beside it, 512 tokens arrive within 10 ms after 1.9 s of silence): no
        # kill can land mid-stream there. The fake replicas above cover the redo itself.
        pytest.skip("the replica sent every long step whole (a loaded machine): nothing to break")
    assert len(redone) == 1
    assert engine.healthy() == {victim: False, vllm_server: True}
    turns = [e.turn for e in events if isinstance(e, TurnFinished)]
    assert len(turns) == finished.steps and all(t.usage is not None for t in turns)
    assert finished.usage is not None and finished.usage.requests == finished.steps + 1
    check_log(agent, session_id, turns)
