"""OpenAIHTTPEngine: against a real `vllm serve` (tiny model) and with injected faults."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from gemma_agent.agent.engines.base import Engine, EngineRequest
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.errors import ConfigError, EngineRequestFailed, EngineUnavailable
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.grammar import tool_call_grammar

from .callsyntax import read_calls
from .conftest import API_KEY, SSE

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def tokenizer(tiny_model_path) -> HFTokenizer:
    return HFTokenizer(tiny_model_path)


def prompt(tok: HFTokenizer, text: str) -> list[int]:
    return [tok.bos_id, *tok.encode(f"<|turn>user\n{text}<turn|>\n<|turn>model\n")]


async def collect(engine, request):
    return [d async for d in engine.generate(request)]


# -- real server ---------------------------------------------------------------------------


@pytest.mark.engine
async def test_real_server_streams_ids_usage_and_cache_hits(vllm_server, tokenizer) -> None:
    async with await OpenAIHTTPEngine.connect(
        [vllm_server], tokenizer, variant="tiny", model="tiny", api_key=API_KEY
    ) as engine:
        assert isinstance(engine, Engine)
        assert engine.info.max_model_len == 4096
        ids = prompt(tokenizer, "Read the file. " * 40)
        first = await collect(engine, EngineRequest(ids, max_tokens=20, seed=1))
        out = [t for d in first for t in d.token_ids]
        last = first[-1]
        assert last.finish_reason in ("stop", "length")
        assert last.usage is not None and last.usage.prompt_tokens == len(ids)
        assert last.usage.generated_tokens == len(out) > 0
        # An incomplete UTF-8 character at a length cut is held back, not shown as U+FFFD.
        assert "".join(d.text for d in first) == tokenizer.decode(out).removesuffix("\ufffd")
        more = ids + out + tokenizer.encode("response:x{value:1}<tool_response|>")
        second = await collect(engine, EngineRequest(more, max_tokens=4, seed=1))
        assert second[-1].usage is not None
        assert second[-1].usage.cached_prompt_tokens >= (len(ids) // 32 - 1) * 32


@pytest.mark.engine
async def test_real_server_grammar_and_thinking_budget(vllm_server, tokenizer) -> None:
    tools = [
        {
            "name": "read_file",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string", "maxLength": 12}},
                "required": ["path"],
            },
        }
    ]
    grammar = tool_call_grammar(tools, "required", thinking=True)
    async with await OpenAIHTTPEngine.connect(
        [vllm_server], tokenizer, variant="tiny", api_key=API_KEY
    ) as engine:
        results = await asyncio.gather(
            *(
                collect(
                    engine,
                    EngineRequest(
                        prompt(tokenizer, "go"),
                        max_tokens=300,
                        seed=i,
                        grammar=grammar,
                        thinking_budget=4,
                    ),
                )
                for i in range(6)
            )
        )
        for deltas in results:
            text = "".join(d.text for d in deltas)
            assert {name for name, _ in read_calls(text)} == {"read_file"}
            ids = [t for d in deltas for t in d.token_ids]
            if ids[0] == tokenizer.control_id(T.CHANNEL_OPEN):
                assert ids.index(tokenizer.control_id(T.CHANNEL_CLOSE)) <= 5


@pytest.mark.engine
async def test_real_server_wrong_model_and_key_are_clear_errors(vllm_server, tokenizer) -> None:
    with pytest.raises(EngineUnavailable, match=r"serves \['tiny'\], not 'gemma'"):
        await OpenAIHTTPEngine.connect(
            [vllm_server], tokenizer, variant="tiny", model="gemma", api_key=API_KEY
        )
    with pytest.raises(EngineUnavailable, match="api-key"):
        await OpenAIHTTPEngine.connect([vllm_server], tokenizer, variant="tiny", api_key="nope")


async def test_unreachable_server_is_unavailable(tokenizer) -> None:
    with pytest.raises(EngineUnavailable, match="cannot reach vllm serve"):
        await OpenAIHTTPEngine.connect(["http://127.0.0.1:9"], tokenizer, variant="tiny")


# -- faults with httpx.MockTransport --------------------------------------------------------


def _sse(events: list[dict]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _models(max_len: int = 4096) -> httpx.Response:
    return httpx.Response(200, json={"data": [{"id": "tiny", "max_model_len": max_len}]})


def _completion(ids: list[int], finish: str = "stop", cached: int = 0) -> list[dict]:
    return [
        {"choices": [{"index": 0, "text": "", "token_ids": ids[:1], "finish_reason": None}]},
        {"choices": [{"index": 0, "text": "", "token_ids": ids[1:], "finish_reason": finish}]},
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": len(ids),
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        },
    ]


async def _engine(tokenizer, handler, **kw) -> OpenAIHTTPEngine:
    kw.setdefault("backoff_s", 0.001)
    return await OpenAIHTTPEngine.connect(
        kw.pop("urls", ["http://a"]),
        tokenizer,
        variant="tiny",
        transport=httpx.MockTransport(handler),
        **kw,
    )


async def test_503_then_success_is_retried(tokenizer) -> None:
    calls: list[dict] = []
    word = tokenizer.encode("hello")

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return _models()
        calls.append(json.loads(req.content))
        if len(calls) == 1:
            return httpx.Response(503, json={"error": {"message": "warming up"}})
        return httpx.Response(200, content=_sse(_completion([*word, 14], cached=64)), headers=SSE)

    engine = await _engine(tokenizer, handler)
    deltas = await collect(engine, EngineRequest(prompt(tokenizer, "hi"), max_tokens=9))
    await engine.aclose()
    assert len(calls) == 2
    body = calls[1]
    assert body["prompt"] == prompt(tokenizer, "hi")
    assert body["skip_special_tokens"] is False and body["return_token_ids"] is True
    assert body["stream"] is True and body["max_tokens"] == 9
    assert set(tokenizer.stop_ids()) <= set(body["stop_token_ids"])
    assert [t for d in deltas for t in d.token_ids] == [*word, 14]
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].usage is not None and deltas[-1].usage.cached_prompt_tokens == 64


async def test_400_is_not_retried(tokenizer) -> None:
    calls = 0

    def handler(req: httpx.Request) -> httpx.Response:
        nonlocal calls
        if req.url.path == "/v1/models":
            return _models()
        calls += 1
        return httpx.Response(400, json={"error": {"message": "bad grammar"}})

    engine = await _engine(tokenizer, handler)
    with pytest.raises(EngineRequestFailed, match="bad grammar"):
        await collect(engine, EngineRequest(prompt(tokenizer, "hi")))
    await engine.aclose()
    assert calls == 1


async def test_persistent_5xx_gives_up_after_the_retries(tokenizer) -> None:
    calls = 0

    def handler(req: httpx.Request) -> httpx.Response:
        nonlocal calls
        if req.url.path == "/v1/models":
            return _models()
        calls += 1
        return httpx.Response(502, text="bad gateway")

    engine = await _engine(tokenizer, handler, retries=2)
    with pytest.raises(EngineUnavailable, match="gave up after 3 attempts, no replica answers"):
        await collect(engine, EngineRequest(prompt(tokenizer, "hi")))
    await engine.aclose()
    assert calls == 3


class _Broken(httpx.AsyncByteStream):
    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self):
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection")


async def test_dropped_stream_resumes_as_an_append(tokenizer) -> None:
    a, b = tokenizer.encode("ab")[:1], tokenizer.encode("cd")
    bodies: list[dict] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return _models()
        bodies.append(json.loads(req.content))
        if len(bodies) == 1:
            first = _sse(_completion(a + b)[:1]).removesuffix(b"data: [DONE]\n\n")
            return httpx.Response(200, stream=_Broken(first), headers=SSE)
        return httpx.Response(200, content=_sse(_completion([*b, 14])), headers=SSE)

    engine = await _engine(tokenizer, handler)
    ids = prompt(tokenizer, "hi")
    deltas = await collect(engine, EngineRequest(ids, max_tokens=10))
    await engine.aclose()
    assert [t for d in deltas for t in d.token_ids] == [*a, *b, 14]
    # The resumed request is the old prompt plus what had arrived, with the rest of the budget.
    assert bodies[1]["prompt"] == ids + a
    assert bodies[1]["max_tokens"] == 10 - len(a)


async def test_dropped_stream_with_a_grammar_fails_the_request(tokenizer) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return _models()
        first = _sse(_completion(tokenizer.encode("abc"))[:1]).removesuffix(b"data: [DONE]\n\n")
        return httpx.Response(200, stream=_Broken(first), headers=SSE)

    engine = await _engine(tokenizer, handler)
    with pytest.raises(EngineRequestFailed, match="cannot be resumed"):
        await collect(engine, EngineRequest(prompt(tokenizer, "hi"), grammar='start: "x"'))
    await engine.aclose()


async def test_replicas_are_chosen_by_fewest_in_flight(tokenizer) -> None:
    release = asyncio.Event()
    hosts: list[str] = []

    class _Slow(httpx.AsyncByteStream):
        async def __aiter__(self):
            await release.wait()
            yield _sse(_completion(tokenizer.encode("ok")))

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return _models()
        hosts.append(req.url.host)
        return httpx.Response(200, stream=_Slow(), headers=SSE)

    engine = await _engine(tokenizer, handler, urls=["http://a", "http://b", "http://c/v1"])
    tasks = [
        asyncio.create_task(collect(engine, EngineRequest(prompt(tokenizer, "x"))))
        for _ in range(6)
    ]
    for _ in range(100):
        if len(hosts) == 6:
            break
        await asyncio.sleep(0.01)
    assert engine.in_flight() == {"http://a": 2, "http://b": 2, "http://c": 2}
    release.set()
    await asyncio.gather(*tasks)
    await engine.aclose()
    assert sorted(hosts) == ["a", "a", "b", "b", "c", "c"]


async def test_connect_checks_the_served_model(tokenizer) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "other", "max_model_len": 8}]})

    with pytest.raises(EngineUnavailable, match=r"serves \['other'\], not 'tiny'"):
        await _engine(tokenizer, handler, model="tiny")
    with pytest.raises(ConfigError, match="at least one"):
        OpenAIHTTPEngine([], tokenizer, variant="tiny")
