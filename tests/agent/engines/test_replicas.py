"""Two real `vllm serve` replicas of the tiny model on loopback: session affinity keeps the
prefix cache hot, a replica killed with SIGKILL mid-run is routed around, and with every
replica gone the run ends with EngineUnavailable, its session kept for a resume."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator

import pytest
from gemma_agent import Agent
from gemma_agent.agent.engines.base import EngineRequest
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.agent.messages import ModelTurn

from .conftest import API_KEY, kill_group, serving

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.engine]


@pytest.fixture(scope="module")
def replicas(tiny_model_path) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Two servers, the second on 127.0.0.2 (a distinct host, as routers expect)."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(serving(tiny_model_path, host=host))
            for host in ("127.0.0.1", "127.0.0.2")
        ]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path) -> HFTokenizer:
    return HFTokenizer(tiny_model_path)


async def connect(urls: list[str], tokenizer: HFTokenizer, **kw) -> OpenAIHTTPEngine:
    return await OpenAIHTTPEngine.connect(
        urls, tokenizer, variant="tiny", model="tiny", api_key=API_KEY, **kw
    )


async def test_each_session_keeps_its_prefix_cache(replicas, tokenizer) -> None:
    urls = [url for url, _ in replicas]
    keys = [f"s{n}" for n in range(4)]  # placed evenly: two per replica
    async with await connect(urls, tokenizer) as engine:
        for n, key in enumerate(keys):
            ids = [tokenizer.bos_id, *tokenizer.encode(f"<|turn>user\nsession {n}. " * 30)]
            previous: list[int] = []
            for step in range(3):
                out, usage = [], None
                request = EngineRequest(ids, max_tokens=8, seed=step, routing_key=key)
                async for d in engine.generate(request):
                    out += d.token_ids
                    usage = d.usage or usage
                assert usage is not None
                if step:  # all but the last partial block of the previous prompt is cached
                    assert usage.cached_prompt_tokens >= (len(previous) // 32 - 2) * 32
                previous = ids
                ids = ids + out + tokenizer.encode(f"result {step} " * 10)
        assert sum(engine.sent().values()) == 12
        assert sorted(engine.sent().values()) == [6, 6]  # each session stayed on its replica


async def test_a_replica_killed_mid_run_and_then_all_of_them(replicas, tokenizer, tmp_path):
    urls = [url for url, _ in replicas]
    engine = await connect(urls, tokenizer, retries=2, backoff_s=0.2)
    killed: list[str] = []
    sent: dict[str, int] = {}

    async def look() -> str:  # no arguments: noise cannot ramble inside an open string
        """Look around."""
        if not killed:  # first call: SIGKILL the replica this session is on
            now = engine.sent()
            url = max(urls, key=lambda u: now[u] - sent[u])
            kill_group(replicas[urls.index(url)][1], signal.SIGKILL)
            replicas[urls.index(url)][1].wait(30)
            killed.append(url)
        return "nothing here"

    agent = Agent(
        engine=engine,
        tools=[look],
        tool_choice="look",  # the grammar forces look: noise cannot end the run at once
        temperature=0.0,
        max_steps=6,
        max_output_tokens=48,
        workspace=tmp_path,
    )
    sent.update(engine.sent())
    result = await agent.run("look around")
    assert killed, f"the tool never ran: {result.reason} {result.error}"
    # The run went on on the other replica (to its step limit or a loop the guard stops).
    assert result.reason in ("max_steps", "loop_detected", "final_answer"), result.error
    turns = [m for m in result.turns if isinstance(m, ModelTurn)]
    assert len(turns) >= 2 and all(t.usage is not None for t in turns)
    assert engine.healthy()[killed[0]] is False
    (alive,) = set(urls) - set(killed)
    assert engine.healthy()[alive] is True

    # Now the other one too: the next run ends with EngineUnavailable, the session is kept.
    kill_group(replicas[urls.index(alive)][1], signal.SIGKILL)
    replicas[urls.index(alive)][1].wait(30)
    again = await agent.run("and again", session_id=agent.session_id)
    assert again.reason == "engine_error"
    assert again.error is not None and "EngineUnavailable" in again.error
    assert agent.session_file(again.session_id).exists()
    assert len(agent.open_session(again.session_id)) >= len(result.turns)
    await engine.aclose()
