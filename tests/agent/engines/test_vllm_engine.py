"""The embedded vLLM engine, for real, on the tiny model (one engine per test session)."""

from __future__ import annotations

import asyncio

import jsonschema
import pytest
from gemma_agent.agent.engines.base import Engine, EngineDelta, EngineRequest
from gemma_agent.errors import ConfigError, EngineRequestFailed
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.grammar import tool_call_grammar

from .callsyntax import read_calls

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def user_prompt(engine, text: str, *, tail: str = "<|turn>model\n") -> list[int]:
    tok = engine.tokenizer
    return [tok.bos_id, *tok.encode(f"<|turn>user\n{text}<turn|>\n{tail}")]


async def collect(engine, request: EngineRequest) -> list[EngineDelta]:
    return [d async for d in engine.generate(request)]


def joined(deltas: list[EngineDelta]) -> list[int]:
    return [t for d in deltas for t in d.token_ids]


async def test_engine_satisfies_protocol(vllm_engine) -> None:
    assert isinstance(vllm_engine, Engine)
    assert vllm_engine.info.variant == "tiny"
    assert vllm_engine.info.max_model_len == 4096
    assert vllm_engine.info.supports_grammar


async def test_stream_reports_usage_finish_and_decoded_text(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "Say something.")
    deltas = await collect(vllm_engine, EngineRequest(ids, max_tokens=40, seed=3))
    last = deltas[-1]
    assert all(d.finish_reason is None and d.usage is None for d in deltas[:-1])
    assert last.finish_reason in ("stop", "length")
    out = joined(deltas)
    assert last.usage is not None
    assert last.usage.prompt_tokens == len(ids)
    assert last.usage.generated_tokens == len(out)
    assert 0 < len(out) <= 40
    if last.finish_reason == "length":
        assert len(out) == 40
    else:  # the stop id is part of the ids and of the text
        assert out[-1] in vllm_engine.tokenizer.stop_ids()
    text = "".join(d.text for d in deltas)
    # An incomplete UTF-8 character at a length cut is held back, not shown as U+FFFD.
    assert text == vllm_engine.tokenizer.decode(out).removesuffix("\ufffd")


async def test_seeded_sampling_is_reproducible(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "Repeat after me.")
    a = joined(await collect(vllm_engine, EngineRequest(ids, max_tokens=24, seed=11)))
    b = joined(await collect(vllm_engine, EngineRequest(ids, max_tokens=24, seed=11)))
    greedy = EngineRequest(ids, max_tokens=24, temperature=0.0)
    c = joined(await collect(vllm_engine, greedy))
    d = joined(await collect(vllm_engine, greedy))
    assert a == b
    assert c == d


async def test_grammar_forces_control_tokens_as_single_ids_and_stops(vllm_engine) -> None:
    tok = vllm_engine.tokenizer
    grammar = 'start: "hello" <|channel> "x" <channel|> <turn|>'
    deltas = await collect(
        vllm_engine, EngineRequest(user_prompt(vllm_engine, "hi"), max_tokens=50, grammar=grammar)
    )
    out = joined(deltas)
    assert deltas[-1].finish_reason == "stop"
    assert tok.control_id(T.CHANNEL_OPEN) in out
    assert out[-1] == tok.control_id(T.TURN_CLOSE)
    assert "".join(d.text for d in deltas) == "hello<|channel>x<channel|><turn|>"


async def test_prefix_cache_hits_on_a_shared_prefix(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "Read the file. " * 60)  # > 256 tokens
    assert len(ids) > 256
    first = await collect(vllm_engine, EngineRequest(ids, max_tokens=4, seed=1))
    out = joined(first)
    # The agent-loop shape: previous prompt + output + a tool response, as an append.
    more = ids + out + vllm_engine.tokenizer.encode("response:x{value:1}<tool_response|>")
    second = await collect(vllm_engine, EngineRequest(more, max_tokens=4, seed=1))
    usage = second[-1].usage
    assert usage is not None
    # Whole 32-token blocks of the earlier prompt are served from the cache.
    assert usage.cached_prompt_tokens >= (len(ids) // 32 - 1) * 32
    assert usage.cached_prompt_tokens < len(more)


LONG = "start: /[a-z ]{3000}/"  # keeps the model generating (no stop token allowed)


async def _wait_idle(engine, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if not engine.num_unfinished_requests():
            return
        await asyncio.sleep(0.05)


async def test_closing_the_stream_aborts_the_request_and_frees_it(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "Write a long story.")
    stream = vllm_engine.generate(EngineRequest(ids, max_tokens=3000, grammar=LONG))
    got = 0
    async for d in stream:
        got += len(d.token_ids)
        if got >= 5:
            break
    await stream.aclose()
    await _wait_idle(vllm_engine)
    assert vllm_engine.num_unfinished_requests() == 0
    # The next engine step sees only the new request: the aborted one left the scheduler and
    # gave back its KV blocks.
    await collect(vllm_engine, EngineRequest(ids, max_tokens=3, seed=0))
    snap = vllm_engine.scheduler_snapshot()
    assert snap is not None
    assert snap.num_running <= 1 and snap.num_waiting == 0


async def test_cancelling_the_consumer_task_aborts_the_request(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "Count to a million.")
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in vllm_engine.generate(EngineRequest(ids, max_tokens=3000, grammar=LONG)):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_idle(vllm_engine)
    assert vllm_engine.num_unfinished_requests() == 0


async def test_concurrent_requests_are_batched(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "Go.")
    results = await asyncio.gather(
        *(collect(vllm_engine, EngineRequest(ids, max_tokens=16, seed=i)) for i in range(6))
    )
    assert all(r[-1].usage is not None for r in results)
    assert len({tuple(joined(r)) for r in results}) > 1  # different seeds, different samples


async def test_bad_prompts_are_refused_with_a_clear_error(vllm_engine) -> None:
    tok = vllm_engine.tokenizer
    with pytest.raises(ConfigError, match="exactly one <bos>"):
        await collect(vllm_engine, EngineRequest([tok.bos_id, tok.bos_id, 5]))
    with pytest.raises(ConfigError, match="exactly one <bos>"):
        await collect(vllm_engine, EngineRequest(tok.encode("no bos")))
    too_long = [tok.bos_id] + [tok.encode("a")[0]] * 5000
    with pytest.raises(EngineRequestFailed, match="max-model-len"):
        await collect(vllm_engine, EngineRequest(too_long))


async def test_invalid_grammar_fails_the_request_not_the_engine(vllm_engine) -> None:
    ids = user_prompt(vllm_engine, "hi")
    with pytest.raises(EngineRequestFailed):
        await collect(vllm_engine, EngineRequest(ids, max_tokens=5, grammar="start: ((("))
    # The engine is still alive.
    deltas = await collect(vllm_engine, EngineRequest(ids, max_tokens=3, seed=0))
    assert deltas[-1].usage is not None


# -- thinking budget ---------------------------------------------------------------------


async def test_thinking_budget_closes_the_channel_and_continues(vllm_engine) -> None:
    tok = vllm_engine.tokenizer
    close = tok.control_id(T.CHANNEL_CLOSE)
    ids = user_prompt(vllm_engine, "Think.", tail="<|turn>model\n<|channel>thought\n")
    # The thought may not end by itself; after it, a short answer.
    grammar = 'start: THOUGHT <channel|> "ok" <turn|>\nTHOUGHT: /[a-z ]+/'
    free = joined(await collect(vllm_engine, EngineRequest(ids, max_tokens=30, grammar=grammar)))
    assert close not in free  # without a budget it thinks until max_tokens

    budget = 7
    deltas = await collect(
        vllm_engine,
        EngineRequest(ids, max_tokens=30, thinking_budget=budget, grammar="start: /[a-z ]+/"),
    )
    out = joined(deltas)
    assert out.index(close) == budget  # exactly `budget` thought tokens, then <channel|>
    assert len(out) > budget + 1  # and it went on answering in the same request
    assert deltas[-1].usage is not None and deltas[-1].usage.generated_tokens == len(out)
    assert tok.control_id(T.CHANNEL_OPEN) not in out[budget:]


async def test_thinking_budget_zero_means_no_thinking(vllm_engine) -> None:
    tok = vllm_engine.tokenizer
    ch_open = tok.control_id(T.CHANNEL_OPEN)
    close = tok.control_id(T.CHANNEL_CLOSE)
    # The prompt opened the channel: it is closed before anything is generated.
    ids = user_prompt(vllm_engine, "Think.", tail="<|turn>model\n<|channel>thought\n")
    out = joined(await collect(vllm_engine, EngineRequest(ids, max_tokens=8, thinking_budget=0)))
    assert out[0] == close
    # A model that wants to open a channel (the grammar offers it first) may not.
    ids = user_prompt(vllm_engine, "Think.")
    grammar = 'start: (<|channel> "t" <channel|>)? "a" <turn|>'
    out = joined(
        await collect(
            vllm_engine, EngineRequest(ids, max_tokens=8, thinking_budget=0, grammar=grammar)
        )
    )
    assert ch_open not in out
    assert vllm_engine.tokenizer.decode(out) == "a<turn|>"


# -- constrained tool calls ----------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "maxLength": 24},
                    "offset": {"type": "integer"},
                    "encoding": {"type": "string", "enum": ["utf-8", "latin-1"]},
                },
                "required": ["path"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "maxLength": 16},
                    "limit": {"type": "number"},
                    "regex": {"type": "boolean"},
                    "paths": {"type": "array", "items": {"type": "string", "maxLength": 8}},
                    "options": {
                        "type": "object",
                        "properties": {
                            "case": {"type": "string", "enum": ["smart", "exact"]},
                            "depth": {"type": "integer", "nullable": True},
                        },
                        "required": ["case"],
                    },
                },
                "required": ["query", "options"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "now",
            "description": "Time.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


def _validate(text: str) -> list[tuple[str, dict]]:
    calls = read_calls(text)
    for name, args in calls:
        jsonschema.validate(args, _jsonschema(SCHEMAS[name]))
    try:
        from gemma_agent.prompts import parse_output  # type: ignore[attr-defined]
    except ImportError:
        return calls
    parsed = parse_output(text, TOOLS)
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == calls
    assert all(c.complete and c.error is None for c in parsed.tool_calls)
    return calls


def _jsonschema(schema: dict) -> dict:
    """The declaration schema as JSON Schema proper (nullable -> type list)."""
    out = dict(schema)
    if out.pop("nullable", False):
        out["type"] = [out["type"], "null"]
    if "properties" in out:
        out["properties"] = {k: _jsonschema(v) for k, v in out["properties"].items()}
        out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = _jsonschema(out["items"])
    return out


async def test_required_tool_calls_always_parse_and_validate(vllm_engine) -> None:
    grammar = tool_call_grammar(TOOLS, "required", thinking=False)
    ids = user_prompt(vllm_engine, "Use a tool.")
    results = await asyncio.gather(
        *(
            collect(vllm_engine, EngineRequest(ids, max_tokens=600, seed=i, grammar=grammar))
            for i in range(100)
        )
    )
    names = set()
    for deltas in results:
        assert deltas[-1].finish_reason == "stop"
        text = "".join(d.text for d in deltas)
        names |= {name for name, _ in _validate(text)}
    assert names == set(SCHEMAS)  # every tool was sampled: the grammar is not one fixed path


async def test_forced_tool_by_name_with_thinking_budget(vllm_engine) -> None:
    grammar = tool_call_grammar(TOOLS, "search", thinking=True)
    ids = user_prompt(vllm_engine, "Search.")
    results = await asyncio.gather(
        *(
            collect(
                vllm_engine,
                EngineRequest(ids, max_tokens=600, seed=i, grammar=grammar, thinking_budget=6),
            )
            for i in range(12)
        )
    )
    for deltas in results:
        text = "".join(d.text for d in deltas)
        assert deltas[-1].finish_reason == "stop", text
        calls = _validate(text)
        assert {name for name, _ in calls} == {"search"}


async def test_required_calls_to_the_builtin_coding_tools_validate(vllm_engine, tmp_path) -> None:
    """The grammar carries the tools' own bounds (e.g. list_dir depth 1-5), not just their types:
    every sampled call passes the registry's pydantic validation."""
    from gemma_agent.prompts import parse_output
    from gemma_agent.tools.builtin import coding_tools
    from gemma_agent.tools.registry import ToolRegistry

    registry = ToolRegistry(coding_tools(sandbox="none"), recall=True)
    decls = registry.declarations()
    # Short strings so that noise output finishes its calls within max_tokens.
    grammar = tool_call_grammar(decls, "required", thinking=False, max_string_chars=48)
    ids = user_prompt(vllm_engine, "List the files.")
    results = await asyncio.gather(
        *(
            collect(vllm_engine, EngineRequest(ids, max_tokens=400, seed=i, grammar=grammar))
            for i in range(40)
        )
    )
    checked = 0
    for deltas in results:
        assert deltas[-1].finish_reason == "stop"
        for call in parse_output("".join(d.text for d in deltas), decls).tool_calls:
            assert call.complete and call.error is None, call
            tool = registry.get(call.name)
            assert tool is not None
            jsonschema.validate(call.arguments, tool.parameters)
            checked += 1
    assert checked >= 40
