"""Routing over replicas, replica faults and the event-stream parser, against real HTTP servers
on loopback (fake replicas in threads that stream what a test says)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Iterator

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.engines.base import EngineRequest
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.routing import Router, rendezvous_score
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.errors import EngineRequestFailed, EngineUnavailable

from .fakeserver import Answer, FakeReplica, Hang, Seen, Status, Stream, completion, serve_fake

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path) -> HFTokenizer:
    return HFTokenizer(tiny_model_path)


@contextlib.contextmanager
def fakes(*answers: Callable[[Seen], Answer]) -> Iterator[list[FakeReplica]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(contextlib.contextmanager(serve_fake)(a)) for a in answers]


def ok(tokenizer: HFTokenizer, text: str = "fine") -> Callable[[Seen], Answer]:
    ids = tokenizer.encode(text)
    return lambda seen: Stream(completion(ids))


async def connect(replicas: list[FakeReplica], tokenizer: HFTokenizer, **kw) -> OpenAIHTTPEngine:
    kw.setdefault("backoff_s", 0.01)
    return await OpenAIHTTPEngine.connect(
        [r.url for r in replicas], tokenizer, variant="tiny", **kw
    )


async def run(engine: OpenAIHTTPEngine, key: str | None, prompt: list[int] | None = None) -> list:
    request = EngineRequest(prompt or [2, 105, 2364], max_tokens=50, routing_key=key)
    return [t async for d in engine.generate(request) for t in d.token_ids]


# -- the event stream ----------------------------------------------------------------------


async def test_line_separators_inside_token_texts(tokenizer) -> None:
    """U+2028, U+2029 and U+0085 are not line ends in SSE; JSON carries them unescaped."""
    texts = ["a\u2028b", "\u2029", "c\u0085", "\u2028\u2029\u0085d"]
    ids = [tokenizer.encode(t)[0] for t in ["alpha", "beta", "gamma", "delta"]]
    with fakes(lambda seen: Stream(completion(ids, texts), pieces=3)) as [replica]:
        engine = await connect([replica], tokenizer)
        got = await run(engine, "s1")
        await engine.aclose()
    assert got == ids
    assert len(replica.seen) == 1  # read whole, not retried


def answer_with(event: str, seen: Seen) -> Answer:
    return Stream([event])


async def test_a_malformed_event_is_resumed_then_a_clean_failure(tokenizer) -> None:
    ids = tokenizer.encode("one two three")

    def answer(seen: Seen) -> Answer:
        if len(replica.seen) == 1:  # one good token, then an event cut in the middle
            return Stream([completion(ids)[0], '{"choices": [{"token_ids": [1'], cut=True)
        return Stream(completion(ids[1:]))

    with fakes(answer) as [replica]:
        engine = await connect([replica], tokenizer)
        got = await run(engine, "s1", [2, 105])
        await engine.aclose()
    assert got == ids
    # The second attempt resumed as an append on the first token, on the same replica.
    assert replica.seen[1].body["prompt"] == [2, 105, ids[0]]

    garbage = ["[1, 2]", "not json", '{"choices": [{"token_ids": "xyz"}]}', '{"usage": 7}']
    for bad in garbage:
        with fakes(functools.partial(answer_with, bad)) as [replica]:
            engine = await connect([replica], tokenizer, retries=2)
            with pytest.raises(EngineRequestFailed, match="gave up after 3 attempts"):
                await run(engine, "s1")
            await engine.aclose()
        assert len(replica.seen) == 3, bad


# -- routing -------------------------------------------------------------------------------


async def test_each_session_stays_on_one_replica_and_sends_its_key(tokenizer) -> None:
    with fakes(ok(tokenizer), ok(tokenizer), ok(tokenizer)) as replicas:
        engine = await connect(replicas, tokenizer, balance_abs_threshold=100)
        keys = [f"session-{i}" for i in range(24)]
        for _ in range(3):
            await asyncio.gather(*(run(engine, k) for k in keys))
        await engine.aclose()
    homes: dict[str, set[int]] = {}
    for n, r in enumerate(replicas):
        for seen in r.seen:
            homes.setdefault(seen.headers["x-session-id"], set()).add(n)
    assert sorted(homes) == sorted(keys)
    assert all(len(h) == 1 for h in homes.values())  # every step where the first one went
    # Placed by weight with bounded loads: 24 sessions split evenly, most on their first choice.
    urls = [r.url for r in replicas]
    assert sorted(len(r.seen) for r in replicas) == [24, 24, 24]  # 8 sessions x 3 steps each
    first = [
        k for k, (n,) in homes.items() if urls[n] == max(urls, key=lambda u: rendezvous_score(k, u))
    ]
    assert len(first) >= 12


async def test_new_sessions_are_placed_evenly_and_stay() -> None:
    """Rendezvous hashing alone splits 8 sessions over 2 replicas like coin flips (4/4 about a
    quarter of the time); bounded loads place each on its first choice unless that one holds its
    share already."""
    for trial in range(20):
        router = Router(["http://a", "http://b"])
        keys = [f"{trial}-{i}" for i in range(8)]
        homes = {k: router.pick(k).url for k in keys}
        assert sorted(list(homes.values()).count(u) for u in ("http://a", "http://b")) == [4, 4]
        assert all(router.pick(k).url == homes[k] for k in keys)  # and they stay


async def test_a_session_leaves_its_replica_only_when_clearly_overloaded() -> None:
    router = Router(["http://a", "http://b"], balance_abs_threshold=4, balance_rel_threshold=1.5)
    key = next(k for k in map(str, range(100)) if router.pick(k).url == "http://a")
    a, b = router.replicas
    a.in_flight, b.in_flight = 5, 1  # 4 more: not past the absolute threshold
    assert router.pick(key) is a
    a.in_flight, b.in_flight = 20, 14  # 6 more but not 1.5 times
    assert router.pick(key) is a
    a.in_flight, b.in_flight = 12, 2
    assert router.pick(key) is b
    a.in_flight = b.in_flight = 0
    assert router.pick(key) is b  # it stays where its cache now is
    assert router.pick(None) in (a, b)


async def test_only_the_failed_replicas_sessions_move() -> None:
    clock = [0.0]
    router = Router(["http://a", "http://b", "http://c"], down_s=1.0, clock=lambda: clock[0])
    keys = [str(i) for i in range(60)]
    before = {k: router.pick(k).url for k in keys}
    a = router.replicas[0]
    router.failed(a, "test")
    after = {k: router.pick(k).url for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "http://a"} and moved
    assert router.due() == []
    clock[0] = 2.0
    assert router.due() == [a]
    router.succeeded(a)
    assert a.healthy and a.failures == 0


# -- faults --------------------------------------------------------------------------------


def home_of(urls: list[str], url: str, prefix: str = "") -> str:
    """A routing key whose rendezvous home is ``url``."""
    keys = (f"{prefix}{i}" for i in range(1000))
    return next(k for k in keys if max(urls, key=lambda u: rendezvous_score(k, u)) == url)


async def test_a_5xx_replica_is_taken_out_and_comes_back(tokenizer) -> None:
    broken = {"on": True}
    fine = ok(tokenizer)

    def flaky(seen: Seen) -> Answer:
        return Status(503, "overloaded") if broken["on"] else fine(seen)

    with fakes(flaky, ok(tokenizer)) as (a, b):
        engine = await connect([a, b], tokenizer, down_s=0.2, backoff_s=5.0)
        key = home_of([a.url, b.url], a.url)
        started = time.monotonic()
        assert await run(engine, key) == tokenizer.encode("fine")
        assert time.monotonic() - started < 2  # failed over at once, no backoff sleep
        assert (len(a.seen), len(b.seen)) == (1, 1)
        assert engine.healthy() == {a.url: False, b.url: True}
        await run(engine, key)
        assert len(a.seen) == 1  # out: not asked again
        a.healthy = False  # the probe is refused too: stays out, backs off longer
        await asyncio.sleep(0.3)
        await run(engine, key)
        await asyncio.sleep(0.1)
        assert engine.healthy()[a.url] is False
        broken["on"], a.healthy = False, True
        for _ in range(40):  # probed again with backoff; back when it answers
            await asyncio.sleep(0.1)
            await run(engine, "other")
            if engine.healthy()[a.url]:
                break
        assert engine.healthy()[a.url]
        new_key = home_of([a.url, b.url], a.url, prefix="new-")
        n = len(a.seen)
        await run(engine, new_key)
        assert len(a.seen) == n + 1
        await engine.aclose()


async def test_a_hanging_replica_is_taken_out(tokenizer) -> None:
    with fakes(lambda seen: Hang(3.0), ok(tokenizer)) as (a, b):
        engine = await connect([a, b], tokenizer, read_timeout_s=0.5, backoff_s=5.0)
        key = home_of([a.url, b.url], a.url)
        started = time.monotonic()
        assert await run(engine, key) == tokenizer.encode("fine")
        assert time.monotonic() - started < 2.5
        assert engine.healthy() == {a.url: False, b.url: True}
        await engine.aclose()


async def test_a_stream_cut_mid_way_resumes_on_another_replica(tokenizer) -> None:
    ids = tokenizer.encode("one two three four")

    def dies(seen: Seen) -> Answer:
        return Stream(completion(ids)[:2], cut=True)

    def rest(seen: Seen) -> Answer:
        return Stream(completion(ids[2:]))

    with fakes(dies, rest) as (a, b):
        engine = await connect([a, b], tokenizer, backoff_s=5.0)
        key = home_of([a.url, b.url], a.url)
        assert await run(engine, key, [2, 105]) == ids
        assert b.seen[0].body["prompt"] == [2, 105, *ids[:2]]
        assert b.seen[0].headers["x-session-id"] == key
        await engine.aclose()


async def test_all_replicas_down_is_unavailable_after_the_retries(tokenizer) -> None:
    down = lambda seen: Status(502, "bad gateway")  # noqa: E731
    with fakes(down, down) as (a, b):
        # down_s long enough that no replica counts as back while the retries run (under load)
        engine = await connect([a, b], tokenizer, retries=3, backoff_s=0.01, down_s=30.0)
        with pytest.raises(EngineUnavailable, match="gave up after 4 attempts, no replica"):
            await run(engine, "s")
        await engine.aclose()
    assert len(a.seen) + len(b.seen) == 4


# -- the agent sends its session id ---------------------------------------------------------


async def test_the_agent_routes_by_session_id(tmp_path) -> None:
    engine = ScriptedEngine(["<|tool_call>call:noop{}<tool_call|>", "done", "again"])

    def noop() -> str:
        """Do nothing."""
        return "ok"

    agent = Agent(engine=engine, tools=[noop], workspace=tmp_path, persist=False)
    first = await agent.run("go")
    second = await agent.run("go")
    keys = [r.request.routing_key for r in engine.requests]
    assert keys == [first.session_id, first.session_id, second.session_id]
    assert first.session_id != second.session_id
