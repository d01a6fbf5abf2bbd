"""Streaming events: what the deltas add up to, how a feed merges them, and flush().

The final result's equality with parse_output for every split is covered in the parse and
property tests; here the events themselves are checked against the final result, for random
well-formed outputs (possibly cut off anywhere), random chunkings, by text and by id.
"""

from __future__ import annotations

import itertools
from typing import Any

from gemma_agent.prompts import (
    ContentDelta,
    ParsedOutput,
    ParseEvent,
    ReasoningDelta,
    StreamParser,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    parse_output,
)
from gemma_agent.prompts import tokens as T
from gemma_agent.prompts.tokens import ByteTokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOK = ByteTokenizer()
S = T.STR

# No ">": random text can then never spell a control marker, yet "<" and "<|" still make the
# parser hold text back as a possible marker.
pieces = st.sampled_from([*"ab xy\n\t<|{}[]():,\"'é日🙂", "thought", "call:", "  "])
words = st.lists(pieces, max_size=10).map("".join)
keys = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)


def gemma_value(draw: Any, depth: int = 0) -> str:
    kind = draw(st.integers(0, 5 if depth < 2 else 3))
    if kind == 0:
        return f"{S}{draw(words)}{S}"
    if kind == 1:
        return str(draw(st.integers(-(10**6), 10**6)))
    if kind == 2:
        return draw(st.sampled_from(["true", "false", "null", "1.5", "bare word"]))
    if kind == 3:
        return f"{S}{S}"
    if kind == 4:
        items = [gemma_value(draw, depth + 1) for _ in range(draw(st.integers(0, 3)))]
        return "[" + ",".join(items) + "]"
    pairs = [f"{draw(keys)}:{gemma_value(draw, depth + 1)}" for _ in range(draw(st.integers(0, 3)))]
    return "{" + ",".join(pairs) + "}"


@st.composite
def outputs(draw: Any) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["thought", "text", "call", "call"]))
        if kind == "thought":
            label = draw(st.sampled_from(["thought\n", "", "thought", "thou"]))
            parts.append(f"{T.CHANNEL_OPEN}{label}{draw(words)}{T.CHANNEL_CLOSE}")
        elif kind == "text":
            parts.append(draw(words))
        else:
            body = gemma_value(draw)
            if not body.startswith("{"):
                body = "{v:" + body + "}"
            name = draw(st.sampled_from(["f", "get_weather", "a.b-c"]))
            close = draw(st.sampled_from([T.TOOL_CALL_CLOSE, T.TOOL_CALL_CLOSE, ""]))
            parts.append(f"{T.TOOL_CALL_OPEN}call:{name}{body}{close}")
    parts.append(draw(st.sampled_from(["", T.TURN_CLOSE, T.TOOL_RESPONSE_OPEN, T.EOS])))
    text = "".join(parts)
    cut = draw(st.integers(0, len(text)))  # anywhere, even inside a marker or a string
    return text[:cut] if draw(st.booleans()) else text


def check_events(events: list[ParseEvent], final: ParsedOutput) -> None:
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert reasoning == (final.reasoning or "")
    assert content == ("" if final.reasoning_as_content else final.content)
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [e.index for e in starts] == [e.index for e in ends] == list(range(len(ends)))
    assert [e.call for e in ends] == final.tool_calls
    assert [e.name for e in starts] == [c.name for c in final.tool_calls]
    args: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, ToolCallArgsDelta):
            args.setdefault(e.index, []).append(e.text)
    for index, call in enumerate(final.tool_calls):
        # the argument deltas are the raw call from its opening bracket on
        opener = min((i for i in (call.raw.find("{"), call.raw.find("(")) if i >= 0), default=-1)
        assert "".join(args.get(index, [])) == (call.raw[opener:] if opener >= 0 else "")
    # every event is in place: no delta of a call before its start or after its end
    open_calls: set[int] = set()
    for e in events:
        if isinstance(e, ToolCallStart):
            open_calls.add(e.index)
        elif isinstance(e, ToolCallArgsDelta):
            assert e.index in open_calls
        elif isinstance(e, ToolCallEnd):
            open_calls.discard(e.index)


def assert_merged(events: list[ParseEvent]) -> None:
    """One feed yields at most one delta per run: no two adjacent deltas of one kind/call."""
    for a, b in itertools.pairwise(events):
        if type(a) is type(b) and isinstance(a, ReasoningDelta | ContentDelta):
            raise AssertionError(f"unmerged deltas {a} {b}")
        if isinstance(a, ToolCallArgsDelta) and isinstance(b, ToolCallArgsDelta):
            assert a.index != b.index, f"unmerged deltas {a} {b}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=outputs(),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=8),
    thinking=st.booleans(),
    tail=st.sampled_from(["", "<|turn>model\n", "<|turn>model\n<|channel>thought\n"]),
)
def test_deltas_add_up_to_the_final_result(
    text: str, sizes: list[int], thinking: bool, tail: str
) -> None:
    final = parse_output(text, thinking=thinking, prompt_tail=tail)
    by_text = StreamParser(thinking=thinking, prompt_tail=tail)
    by_id = StreamParser(thinking=thinking, prompt_tail=tail, tokenizer=TOK)
    ids = TOK.encode(text)
    text_events: list[ParseEvent] = []
    id_events: list[ParseEvent] = []
    pos = 0
    step = 0
    while pos < max(len(text), len(ids)):
        size = sizes[step % len(sizes)]
        step += 1
        got = by_text.feed_text(text[pos : pos + size])
        assert_merged(got)
        text_events += got
        got = by_id.feed_ids(ids[pos : pos + size])
        assert_merged(got)
        id_events += got
        pos += size
    text_events += by_text.flush()
    id_events += by_id.flush()
    assert by_text.finish() == final
    assert by_id.finish() == final
    check_events(text_events, final)
    check_events(id_events, final)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=outputs())
def test_one_feed_merges_everything_into_one_delta_per_run(text: str) -> None:
    p = StreamParser()
    fed, flushed = p.feed_text(text), p.flush()
    assert_merged(fed)
    assert_merged(flushed)
    check_events(fed + flushed, parse_output(text))


# --- flush() --------------------------------------------------------------------------------


def test_flush_releases_text_held_back_as_a_possible_marker() -> None:
    p = StreamParser()
    assert p.feed_text("Hello <tur") == [ContentDelta("Hello")]
    assert p.flush() == [ContentDelta(" <tur")]
    assert p.flush() == []
    assert p.finish().content == "Hello <tur" and p.finish().stop is None


def test_flush_releases_an_undecided_label_and_start() -> None:
    p = StreamParser(prompt_tail="<|turn>model\n<|channel>thought\n")
    assert p.feed_text("thou") == []
    assert p.flush() == [ReasoningDelta("thou")]
    assert p.finish().reasoning == "thou"
    q = StreamParser()
    assert q.feed_text("though") == []  # maybe the "thought\n" label (robustness case 3)
    assert q.flush() == [ContentDelta("though")]


def test_flush_ends_a_call_that_was_cut_off() -> None:
    # Cut off before its arguments, the name may be partial ("get_wea"): no call at all.
    p = StreamParser()
    assert p.feed_text("Let me look.<|tool_call>call:get_wea") == [ContentDelta("Let me look.")]
    assert p.flush() == []
    out = p.finish()
    assert out.tool_calls == [] and not out.complete and out.call_cut_off
    assert out.content == "Let me look." and out.stop is None
    # Cut off inside the arguments: the call is reported, incomplete, with the reason.
    q = StreamParser()
    assert q.feed_text('<|tool_call>call:f{a:<|"|>x') == [
        ToolCallStart(0, "f"),
        ToolCallArgsDelta(0, '{a:<|"|>x'),
    ]
    (end,) = q.flush()
    assert isinstance(end, ToolCallEnd) and end.call.error and "cut off" in end.call.error


def test_flush_after_finish_and_after_a_stop() -> None:
    p = StreamParser()
    p.feed_text("Hi <|")
    result = p.finish()
    assert p.flush() == [ContentDelta(" <|")]  # finish() kept them
    assert p.finish() is result
    assert p.feed_text("more") == [] and p.flush() == []
    q = StreamParser()
    assert q.feed_text("Done.<turn|>trailing") == [ContentDelta("Done.")]
    assert q.flush() == []  # the stop marker already ended the output


def test_flush_by_id() -> None:
    p = StreamParser(tokenizer=TOK)
    p.feed_ids(TOK.encode("<|tool_call>call:f{a:1"))
    (end,) = p.flush()
    assert isinstance(end, ToolCallEnd) and end.call.arguments == {"a": 1}
    assert not end.call.complete


# --- the fast paths keep the semantics ---------------------------------------------------------


def test_token_by_token_equals_whole_on_a_tool_heavy_output() -> None:
    body = "def f(x):\n    return {'k': [x, (1, 2)]}  # a <b> | c\n" * 20
    text = (
        f"{T.CHANNEL_OPEN}thought\nPlan: write it.\n{T.CHANNEL_CLOSE}Writing.\n"
        f"{T.TOOL_CALL_OPEN}call:write_file{{content:{S}{body}{S},path:{S}a.py{S}}}"
        f"{T.TOOL_CALL_CLOSE}{T.TOOL_CALL_OPEN}call:grep{{paths:[{S}src{S}],n:3}}"
        f"{T.TOOL_CALL_CLOSE}{T.TOOL_RESPONSE_OPEN}"
    )
    final = parse_output(text)
    p = StreamParser()
    events: list[ParseEvent] = []
    for i in range(0, len(text), 3):
        events += p.feed_text(text[i : i + 3])
    events += p.flush()
    assert p.finish() == final
    check_events(events, final)
    assert final.tool_calls[0].arguments == {"content": body, "path": "a.py"}
    # repeated tokens share their (immutable) events; each still carries its call's index
    deltas = [e for e in events if isinstance(e, ToolCallArgsDelta)]
    assert {e.index for e in deltas} == {0, 1}
    assert len({id(e) for e in deltas}) < len(deltas)


def test_events_keep_dataclass_construction_and_immutability() -> None:
    import dataclasses

    import pytest

    assert ToolCallArgsDelta(index=1, text="x") == ToolCallArgsDelta(1, "x")
    assert ContentDelta(text="a") != ReasoningDelta(text="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ContentDelta("a").text = "b"  # type: ignore[misc]
    call = ToolCallEnd(0, parse_output("<|tool_call>call:f{}").tool_calls[0]).call
    assert call.error is None and call.complete
