"""Property tests: parse(render(call)) == call, and the parser never raises and never depends on
how its input was split (hypothesis)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from gemma_agent.prompts import StreamParser, parse_output, render_chat, render_ids
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.tokens import ByteTokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOK = ByteTokenizer()
MARKERS = list(T.CONTROL_TOKENS)

CHARS = st.characters(blacklist_categories=("Cs",))
TRICKY = st.sampled_from(
    [
        '"',
        "'",
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        ",",
        ":",
        "\n",
        "\\",
        " ",
        "\t",
        "é",
        "日本",
        "🙂",
        "<",
        ">",
        "|",
        "null",
        "true",
        "1.5",
    ]
)
text_value = st.lists(st.one_of(TRICKY, st.text(CHARS, max_size=6)), max_size=8).map("".join)
plain_text = text_value.filter(lambda s: not any(m in s for m in MARKERS))
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
)


def values(strings: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), numbers, strings)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=12,
    )


def same(a: Any, b: Any) -> bool:
    """Equality that keeps bool/int/float apart (2 and 2.0 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def rendered_call(name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": name, "arguments": args}}
            ],
        },
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=keys, args=st.dictionaries(keys, values(plain_text), max_size=6))
def test_round_trip_text(name: str, args: dict[str, Any]) -> None:
    prompt = render_chat(rendered_call(name, args), variant="E4B", add_generation_prompt=False)
    generated = prompt[prompt.index("<|tool_call>") :]
    out = parse_output(generated)
    assert out.stop == "<|tool_response>" and out.complete
    (call,) = out.tool_calls
    assert call.name == name and call.complete and call.error is None
    assert same(call.arguments, args), (call.arguments, args)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=keys, args=st.dictionaries(keys, values(text_value), max_size=5))
def test_round_trip_ids_with_markup_in_strings(name: str, args: dict[str, Any]) -> None:
    """By id, strings may even contain control strings such as <|"|> or <turn|> (safe
    tokenization)."""
    msgs = rendered_call(name, args)
    ids = render_ids(msgs, None, TOK, variant="E4B", add_generation_prompt=False)
    start = ids.index(TOK.control_id(T.TOOL_CALL_OPEN))
    parser = StreamParser(tokenizer=TOK)
    parser.feed_ids(ids[start:])
    out = parser.finish()
    (call,) = out.tool_calls
    assert call.name == name and call.complete
    assert same(call.arguments, args), (call.arguments, args)


fragments = st.one_of(
    st.sampled_from(MARKERS),
    st.sampled_from(["call:", "f", "get_weather", "{", "}", "(", ")", "[", "]", ":", ",", "thought", "\n", " ", "thought\n",
                     "true", "null", "12.5", "-", "<call>", "<", "|", "a:1", '"']),
    st.text(CHARS, max_size=5),
)  # fmt: skip
outputs = st.lists(fragments, max_size=40).map("".join)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
    }
]


def check_never_raises(
    text: str, split: int, thinking: bool, tail: str, with_tools: bool, chunk: int
) -> None:
    tools = TOOLS if with_tools else None
    whole = parse_output(text, tools, thinking=thinking, prompt_tail=tail)
    split = split % (len(text) + 1)
    p = StreamParser(tools, thinking=thinking, prompt_tail=tail)
    p.feed_text(text[:split])
    p.feed_text(text[split:])
    assert p.finish() == whole
    q = StreamParser(tools, thinking=thinking, prompt_tail=tail, tokenizer=TOK)
    ids = TOK.encode(text)
    for i in range(0, len(ids), chunk):
        q.feed_ids(ids[i : i + chunk])
    assert q.finish() == whole
    assert isinstance(whole.content, str) and all(
        isinstance(c.arguments, dict) for c in whole.tool_calls
    )


FUZZ = dict(
    text=outputs,
    split=st.integers(min_value=0, max_value=10**6),
    thinking=st.booleans(),
    tail=st.sampled_from(
        ["", "<|turn>model\n", "<|channel>thought\n", "<|turn>model\n<|channel>thought\n<channel|>"]
    ),
    with_tools=st.booleans(),
    chunk=st.integers(min_value=1, max_value=7),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FUZZ)
def test_parser_never_raises_and_is_split_invariant(**kw: Any) -> None:
    check_never_raises(**kw)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FUZZ)
def test_parser_never_raises_10k(**kw: Any) -> None:
    check_never_raises(**kw)
