"""Token-like feeds: control tokens whole, short words and single symbols, as a BPE model emits
them (what bench/parser.py streams). These take feed_text's fast paths (a token inside a string
argument or in a call's syntax, a string marker on its own) rather than the held-back-marker
path that fixed-size chunks mostly exercise; the events and the result must not change."""

from __future__ import annotations

import re
from typing import Any

from gemma_agent.prompts import ParseEvent, StreamParser, ToolCallArgsDelta, parse_output
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.tokens import ByteTokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_stream import assert_merged, check_events, outputs

TOK = ByteTokenizer()
S = T.STR
_MARKERS = "|".join(re.escape(m) for m in sorted(T.CONTROL_TOKENS, key=len, reverse=True))
_TOKEN_RE = re.compile(_MARKERS + r"| ?[A-Za-z0-9_]{1,6}|\s+|.", re.S)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {"v": {"type": "integer"}, "a": {"type": "string"}},
            },
        },
    }
]


def token_deltas(text: str) -> list[str]:
    deltas = _TOKEN_RE.findall(text)
    assert "".join(deltas) == text
    return deltas


def stream(text: str, deltas: list[str], **kw: Any) -> list[ParseEvent]:
    p = StreamParser(**kw)
    events: list[ParseEvent] = []
    for d in deltas:
        got = p.feed_text(d)
        assert_merged(got)
        events += got
    events += p.flush()
    assert p.finish() == parse_output(text, **kw)
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=outputs(), thinking=st.booleans(), with_tools=st.booleans())
def test_token_like_feeds_give_the_events_and_result_of_the_whole(
    text: str, thinking: bool, with_tools: bool
) -> None:
    kw: dict[str, Any] = {"thinking": thinking, "tools": TOOLS if with_tools else None}
    check_events(stream(text, token_deltas(text), **kw), parse_output(text, **kw))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=outputs(), pattern=st.lists(st.booleans(), min_size=1, max_size=6))
def test_alternating_feed_text_and_feed_ids_token_by_token(text: str, pattern: list[bool]) -> None:
    """feed_ids leaves feed_text's fast path off; feed_text turns it back on at a marker."""
    final = parse_output(text)
    p = StreamParser(tokenizer=TOK)
    events: list[ParseEvent] = []
    for i, d in enumerate(token_deltas(text)):
        events += p.feed_text(d) if pattern[i % len(pattern)] else p.feed_ids(TOK.encode(d))
    events += p.flush()
    assert p.finish() == final
    check_events(events, final)


def test_brackets_in_syntax_tokens_and_text_after_the_closing_bracket() -> None:
    """Tokens such as ``:[`` or ``]},`` carry several brackets; text after the arguments close
    (before ``<tool_call|>``) is kept as argument text but its brackets are not counted."""
    deltas = ["<|tool_call>", "call", ":f{", "v", ":[", "1", ",[", "2", "]],", "m", ":{",
              "k", ":[", S, "x]", S, "]}", ",a", ":", S, "}{", S, "}", " trailing", " ])",
              "<tool_call|>", "<|tool_call>", "call", ":", "f", "(v", ":", "3)", "<|channel>",
              "thought", "\n", "next", "<channel|>", "<|tool_call>", "call:f{v:[4,",
              "<turn|>"]  # fmt: skip
    text = "".join(deltas)
    final = parse_output(text, TOOLS)
    events = stream(text, deltas, tools=TOOLS)
    check_events(events, final)
    first, second, third = final.tool_calls
    assert first.complete and first.arguments == {"v": [1, [2]], "m": {"k": ["x]"]}, "a": "}{"}
    assert first.error == "v: expected integer, got an array"
    assert second.complete and second.arguments == {"v": 3} and second.error is None
    assert final.reasoning == "next"
    assert not third.complete and third.arguments == {"v": [4]} and "cut off" in (third.error or "")
    args = "".join(e.text for e in events if isinstance(e, ToolCallArgsDelta) and e.index == 0)
    assert args.endswith("} trailing ])")
