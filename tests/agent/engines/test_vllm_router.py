"""Behind `vllm-router --policy cache_aware` in front of two real `vllm serve` replicas of the
tiny model: our HTTP engine, given the router's one URL, runs a multi-step agent session to the
end, every request carries its session id as the ``x-session-id`` header, and the router
keeps the session on one worker, as its debug log of decisions shows."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gemma_agent import Agent
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.agent.messages import ModelTurn

from .conftest import API_KEY, _free_port, kill_group, serving

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.engine]


def router_command(urls: list[str], port: int) -> list[str]:
    exe = shutil.which("vllm-router") or str(Path(sys.executable).parent / "vllm-router")
    if not Path(exe).exists():
        if os.environ.get("CI"):
            pytest.fail("vllm-router is not installed")
        pytest.skip("vllm-router is not installed (pip install vllm-router)")
    return [
        exe,
        "--worker-urls",
        *urls,
        "--policy",
        "cache_aware",
        "--api-key",
        API_KEY,
        "--request-id-headers",
        "x-session-id",
        "--log-level",
        "debug",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


@pytest.fixture(scope="module")
def router(vllm_server: str, tiny_model_path: Path, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The router's URL and its log, in front of the session's server and a second one on 127.0.0.2 (the
    router tells workers apart by host: two ports of 127.0.0.1 never become ready)."""
    with serving(tiny_model_path, host="127.0.0.2") as (second, _):
        port = _free_port()
        log_path = tmp_path_factory.mktemp("router") / "vllm-router.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                router_command([vllm_server, second], port),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 120
                while True:
                    assert proc.poll() is None, log_path.read_text()[-2000:]
                    with contextlib.suppress(httpx.HTTPError):
                        headers = {"Authorization": f"Bearer {API_KEY}"}
                        if httpx.get(f"{url}/v1/models", headers=headers).status_code == 200:
                            break
                    assert time.monotonic() < deadline, log_path.read_text()[-2000:]
                    time.sleep(0.3)
                yield url, log_path
            finally:
                kill_group(proc, signal.SIGTERM)
                proc.wait(10)


class Recording(httpx.AsyncHTTPTransport):
    """The real transport, noting the session header of each completion request."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/completions":
            self.keys.append(request.headers.get("x-session-id"))
        return await super().handle_async_request(request)


async def test_an_agent_session_runs_behind_vllm_router(router, tiny_model_path, tmp_path):
    url, log = router
    wire = Recording()
    engine = await OpenAIHTTPEngine.connect(
        [url],
        HFTokenizer(tiny_model_path),
        variant="tiny",
        model="tiny",
        api_key=API_KEY,
        transport=wire,
    )

    async def look() -> str:  # no arguments: noise cannot ramble inside an open string
        """Look around."""
        return "nothing here"

    agent = Agent(
        engine=engine,
        tools=[look],
        tool_choice="look",  # the grammar forces look: every step is a call, to the step limit
        temperature=0.0,
        max_steps=3,
        max_output_tokens=32,
        loop_nudge_after=4,
        loop_stop_after=4,
        workspace=tmp_path,
        persist=False,
    )
    try:
        result = await agent.run("look around")
    finally:
        await engine.aclose()
    assert result.reason == "max_steps", result.error
    turns = [m for m in result.turns if isinstance(m, ModelTurn)]
    assert len(turns) == 3 and all(t.usage is not None and t.tool_calls for t in turns)
    assert list(engine.sent()) == [url] and engine.sent()[url] >= 3  # re-decodes too
    # Steps 2 and 3 append to the step before, and cache_aware sent them where that one went:
    # all but the last partial blocks of the previous prompt came from the cache.
    for before, turn in itertools.pairwise(turns):
        assert before.usage is not None and turn.usage is not None
        assert turn.usage.cached_prompt_tokens >= (before.usage.prompt_tokens // 32 - 2) * 32
    # Every request carried the session id, and the router kept the session on one worker.
    assert len(wire.keys) == engine.sent()[url] and set(wire.keys) == {result.session_id}
    chosen: list[str] = []
    deadline = time.monotonic() + 20  # the router writes its log in its own time
    while len(chosen) < len(wire.keys) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())  # its log is in colour
        chosen = re.findall(r'Cache prefix decision .*?selected="([^"]+)"', text)
    assert len(chosen) == len(wire.keys) and len(set(chosen)) == 1, chosen
