"""Start/stop of the embedded engine: no orphan process, dead engines reported clearly.

These tests start their own engines (the session one must stay alive), so they cost ~15 s each.
"""

from __future__ import annotations

import asyncio
import os
import signal

import psutil
import pytest
from gemma_agent.agent.engines.base import EngineRequest
from gemma_agent.errors import EngineUnavailable

from ...conftest import TINY_ENGINE_ARGS

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


async def _start(tiny_model_path):
    from gemma_agent.agent.engines.vllm import VLLMEngine

    before = _children()
    engine = await VLLMEngine.start(tiny_model_path, variant="tiny", **TINY_ENGINE_ARGS)
    return engine, _children() - before


async def _one(engine) -> list[int]:
    tok = engine.tokenizer
    ids = [tok.bos_id, *tok.encode("<|turn>user\nhi<turn|>\n<|turn>model\n")]
    return [t async for d in engine.generate(EngineRequest(ids, max_tokens=4)) for t in d.token_ids]


async def test_aclose_leaves_no_process_behind(tiny_model_path, vllm_engine) -> None:
    engine, spawned = await _start(tiny_model_path)
    assert spawned, "vLLM runs its engine core in a child process"
    assert await _one(engine)
    await engine.aclose()
    for _ in range(100):
        if not _alive(spawned):
            break
        await asyncio.sleep(0.1)
    assert not _alive(spawned)
    with pytest.raises(EngineUnavailable, match="closed"):
        await _one(engine)
    await engine.aclose()  # idempotent


async def test_a_dead_engine_core_is_reported_as_unavailable(tiny_model_path, vllm_engine) -> None:
    engine, spawned = await _start(tiny_model_path)
    try:
        for pid in spawned:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(EngineUnavailable, match="died"):
            async with asyncio.timeout(60):
                for _ in range(50):  # vLLM notices the death within a second or two
                    await _one(engine)
                    await asyncio.sleep(0.2)
    finally:
        await engine.aclose()
    assert not _alive(spawned)
