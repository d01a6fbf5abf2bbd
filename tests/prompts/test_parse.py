"""The output parser: the output grammar, every robustness case (docs/format.md, 'Parser
robustness', numbered as the tests below), coercion, streaming."""

from __future__ import annotations

from typing import Any

import pytest
from gemma_agent.prompts import (
    ContentDelta,
    ParsedOutput,
    ReasoningDelta,
    StreamParser,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    parse_output,
    render_ids,
    tokenize_tool_responses,
)
from gemma_agent.prompts.tokens import ByteTokenizer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "w",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "temp": {"type": "number"},
                "metric": {"type": "boolean"},
                "note": {"type": "string", "nullable": True},
                "tags": {"type": "array", "items": {"type": "integer"}},
                "opts": {"type": "object", "properties": {"round": {"type": "integer"}}},
                "zip": {"type": "string"},
            },
            "required": ["city"],
        },
    },
}
TOOLS = [WEATHER]


def split_everywhere(text: str, **kw: Any) -> ParsedOutput:
    """parse_output must equal the streamed result for every split point (and char by char)."""
    whole = parse_output(text, **kw)
    for i in range(len(text) + 1):
        p = StreamParser(
            kw.get("tools"),
            thinking=kw.get("thinking", False),
            prompt_tail=kw.get("prompt_tail", ""),
        )
        p.feed_text(text[:i])
        p.feed_text(text[i:])
        assert p.finish() == whole, f"split at {i}: {text[:i]!r} | {text[i:]!r}"
    p = StreamParser(
        kw.get("tools"), thinking=kw.get("thinking", False), prompt_tail=kw.get("prompt_tail", "")
    )
    for ch in text:
        p.feed_text(ch)
    assert p.finish() == whole
    return whole


# --- the grammar --------------------------------------------------------------------------------


def test_plain_answer() -> None:
    out = split_everywhere("Paris is the capital.<turn|>")
    assert out == ParsedOutput(None, "Paris is the capital.", [], True, "<turn|>")


def test_answer_with_thinking() -> None:
    out = split_everywhere(
        "<|channel>thought\nStep 1.\nStep 2.\n<channel|>Paris.<turn|>", thinking=True
    )
    assert (out.reasoning, out.content, out.stop) == ("Step 1.\nStep 2.", "Paris.", "<turn|>")


def test_tool_round() -> None:
    text = (
        '<|channel>thought\nNeed data.<channel|><|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>'
        '<|tool_call>call:get_weather{city:<|"|>x "y" {z}, a:b<|"|>,days:3}<tool_call|><|tool_response>'
    )
    out = split_everywhere(text, tools=TOOLS)
    assert out.reasoning == "Need data." and out.content == "" and out.stop == "<|tool_response>"
    assert [c.arguments for c in out.tool_calls] == [
        {"city": "Paris"},
        {"city": 'x "y" {z}, a:b', "days": 3},
    ]
    assert all(c.complete and c.error is None for c in out.tool_calls)
    assert out.tool_calls[0].raw == 'call:get_weather{city:<|"|>Paris<|"|>}'


def test_post_tool_reasoning_from_prompt_tail() -> None:
    tail = "<|tool_response>response:f{value:1}<tool_response|><|channel>thought\n"
    out = split_everywhere("It is sunny.\n<channel|>Sunny in Paris.<turn|>", prompt_tail=tail)
    assert (out.reasoning, out.content) == ("It is sunny.", "Sunny in Paris.")
    prefill = "<|turn>model\n<|channel>thought\n<channel|>"
    assert split_everywhere("Hi<turn|>", prompt_tail=prefill).content == "Hi"


# --- robustness cases (docs/format.md, 'Parser robustness') ---------------------------------------


@pytest.mark.parametrize(
    "ghost",
    ["<|channel>thought\n<channel|>", "<|channel><channel|>", "<|channel>thought<channel|>"],
)
@pytest.mark.parametrize("thinking", [False, True])
def test_1_empty_thought_block(ghost: str, thinking: bool) -> None:
    out = split_everywhere(ghost + "Answer.<turn|>", thinking=thinking)
    assert (out.reasoning, out.content) == (None, "Answer.")


def test_2_label_stripped_once_after_prefilled_opener() -> None:
    tail = "<|channel>thought\n"
    out = split_everywhere("thought\nthought\nreal<channel|>A<turn|>", prompt_tail=tail)
    assert out.reasoning == "thought\nreal"


def test_3_bare_label_at_start() -> None:
    on = split_everywhere("thought\nhmm\n<channel|>A<turn|>", thinking=True)
    assert (on.reasoning, on.content) == ("hmm", "A")
    off = split_everywhere("thought\nJust text.<turn|>", thinking=False)
    assert (off.reasoning, off.content) == (None, "Just text.")
    not_label = split_everywhere("thoughtful answer<turn|>", thinking=True)
    assert (not_label.reasoning, not_label.content) == (None, "thoughtful answer")


def test_4_stray_channel_close() -> None:
    out = split_everywhere("I should answer briefly.<channel|>Paris.<turn|>")
    assert (out.reasoning, out.content) == ("I should answer briefly.", "Paris.")
    after_call = split_everywhere("<|tool_call>call:f{}<tool_call|>x<channel|>y<turn|>")
    assert (after_call.reasoning, after_call.content) == (None, "xy")


def test_5_tool_call_inside_unclosed_channel() -> None:
    out = split_everywhere(
        "<|channel>thought\nCall it.<|tool_call>call:f{a:1}<tool_call|><|tool_response>"
    )
    assert out.reasoning == "Call it." and out.tool_calls[0].arguments == {"a": 1}


@pytest.mark.parametrize(
    "head", [":get_weather", "get_weather", " call: get_weather ", "call:get_weather"]
)
def test_6_missing_call_prefix(head: str) -> None:
    out = split_everywhere(f'<|tool_call>{head}{{city:<|"|>Rome<|"|>}}<tool_call|>', tools=TOOLS)
    assert (out.tool_calls[0].name, out.tool_calls[0].arguments) == (
        "get_weather",
        {"city": "Rome"},
    )


def test_7_parentheses() -> None:
    out = split_everywhere(
        '<|tool_call>call:get_weather(city:<|"|>Rome<|"|>,days:2)<tool_call|>', tools=TOOLS
    )
    assert out.tool_calls[0].arguments == {"city": "Rome", "days": 2} and out.tool_calls[0].complete


@pytest.mark.parametrize("end", ["<turn|>", "<eos>", ""])
def test_8_call_closed_by_turn_end_or_stream_end(end: str) -> None:
    out = split_everywhere(f"<|tool_call>call:f{{a:1}}{end}")
    assert out.tool_calls[0].complete and out.tool_calls[0].arguments == {"a": 1}
    assert out.stop == (end or None)
    cut = split_everywhere(f"<|tool_call>call:f{{a:[1,{end}")
    assert not cut.tool_calls[0].complete and not cut.complete and cut.tool_calls[0].error


def test_9_eos_after_calls_is_still_a_tool_round() -> None:
    out = split_everywhere("<|tool_call>call:f{}<tool_call|><eos>")
    assert out.stop == "<eos>" and len(out.tool_calls) == 1 and out.tool_calls[0].complete


def test_10_back_to_back_calls_without_close() -> None:
    out = split_everywhere(
        "<|tool_call>call:a{x:1}<|tool_call>call:b{y:2}<tool_call|><|tool_call>call:c{}<|tool_response>"
    )
    assert [(c.name, c.arguments) for c in out.tool_calls] == [
        ("a", {"x": 1}),
        ("b", {"y": 2}),
        ("c", {}),
    ]


def test_11_plain_text_call_only_for_declared_tools() -> None:
    text = 'Sure. call:get_weather{city:<|"|>Rome<|"|>}<turn|>'
    out = split_everywhere(text, tools=TOOLS)
    assert out.content == "Sure." and out.tool_calls[0].arguments == {"city": "Rome"}
    assert split_everywhere(text).tool_calls == []
    undeclared = split_everywhere("x <call>other{a:1}<turn|>", tools=TOOLS)
    assert undeclared.tool_calls == [] and undeclared.content == "x <call>other{a:1}"
    tagged = split_everywhere('<call>get_weather{city:<|"|>Oslo<|"|>}', tools=TOOLS)
    assert tagged.tool_calls[0].arguments == {"city": "Oslo"} and tagged.content == ""


def test_12_bare_values_without_schema() -> None:
    out = split_everywhere(
        "<|tool_call>call:f{unit:celsius,t:12.5,n:-3,b:true,z:null,e:1e-05,big:12345678901234567890,zip:007,word:tru}"
    )
    assert out.tool_calls[0].arguments == {
        "unit": "celsius", "t": 12.5, "n": -3, "b": True, "z": None, "e": 1e-05,
        "big": 12345678901234567890, "zip": "007", "word": "tru",
    }  # fmt: skip


def test_12_bare_values_with_schema_coercion() -> None:
    text = (
        '<|tool_call>call:get_weather{city:Paris,days:<|"|>3<|"|>,temp:<|"|>21.5<|"|>,metric:<|"|>true<|"|>,'
        'note:null,zip:01234,tags:[1,<|"|>2<|"|>],opts:{round:<|"|>2<|"|>}}<tool_call|>'
    )
    call = split_everywhere(text, tools=TOOLS).tool_calls[0]
    assert call.error is None
    assert call.arguments == {
        "city": "Paris", "days": 3, "temp": 21.5, "metric": True, "note": None, "zip": "01234",
        "tags": [1, 2], "opts": {"round": 2},
    }  # fmt: skip
    assert parse_output("<|tool_call>call:get_weather{city:12.50}", TOOLS).tool_calls[
        0
    ].arguments == {"city": "12.50"}


def test_12_schema_mismatch_is_reported_not_raised() -> None:
    call = parse_output(
        "<|tool_call>call:get_weather{city:null,days:many,metric:maybe,tags:5}", TOOLS
    ).tool_calls[0]
    assert call.complete and call.error is not None
    for part in (
        "city: is required",
        "days: expected integer",
        "metric: expected boolean",
        "tags: expected array",
    ):
        assert part in call.error


def test_12_null_for_optional_non_nullable_argument_is_dropped() -> None:
    call = parse_output(
        '<|tool_call>call:get_weather{city:<|"|>X<|"|>,days:null,note:null}', TOOLS
    ).tool_calls[0]
    assert call.arguments == {"city": "X", "note": None} and call.error is None


def test_13_whitespace_trailing_commas_quoted_keys() -> None:
    text = (
        '<|tool_call>call:f{ a : 1 ,\n <|"|>b c<|"|> : [ 1 , 2 , ] , d: { e : x y } , }<tool_call|>'
    )
    assert split_everywhere(text).tool_calls[0].arguments == {
        "a": 1,
        "b c": [1, 2],
        "d": {"e": "x y"},
    }


def test_bare_values_with_colons() -> None:
    text = "<|tool_call>call:f{url:http://x.org/a,time:12:30}"
    assert split_everywhere(text).tool_calls[0].arguments == {
        "url": "http://x.org/a",
        "time": "12:30",
    }


def test_14_text_before_the_channel() -> None:
    out = split_everywhere("Lead. <|channel>thought\nr<channel|>Answer.<turn|>")
    assert (out.reasoning, out.content) == ("r", "Lead. Answer.")
    assert split_everywhere("  \n<|channel>thought\nr<channel|>A<turn|>").content == "A"


def test_15_whitespace_around_calls_dropped() -> None:
    out = split_everywhere(
        "\n <|tool_call>call:f{}<tool_call|>\n\n<|tool_call>call:g{}<tool_call|> \n<|tool_response>"
    )
    assert out.content == "" and len(out.tool_calls) == 2


def test_16_many_control_tokens_in_one_delta_ids() -> None:
    tok = ByteTokenizer()
    text = '<|channel>thought\nr<channel|><|tool_call>call:f{a:<|"|>x<|"|>}<tool_call|><|tool_call>call:g{}<tool_call|><|tool_response>'
    p = StreamParser(tokenizer=tok)
    events = p.feed_ids(tok.encode(text))
    assert p.finish() == parse_output(text)
    assert [type(e) for e in events if isinstance(e, ToolCallEnd | ToolCallStart)] == [
        ToolCallStart,
        ToolCallEnd,
    ] * 2


def test_17_truncation_keeps_partial_reasoning() -> None:
    out = split_everywhere("<|channel>thought\nI am thinking abo")
    assert out.reasoning == "I am thinking abo" and not out.complete and out.stop is None
    in_string = split_everywhere('<|tool_call>call:f{a:<|"|>open string, }')
    assert not in_string.tool_calls[0].complete and not in_string.complete


def test_18_answer_inside_never_closed_post_tool_channel() -> None:
    out = split_everywhere("The weather is sunny.<turn|>", prompt_tail="<|channel>thought\n")
    assert out.reasoning == "The weather is sunny." and out.content == "The weather is sunny."
    assert out.reasoning_as_content and out.complete
    cut = split_everywhere("The weather", prompt_tail="<|channel>thought\n")
    assert cut.content == "" and not cut.reasoning_as_content and not cut.complete


def test_19_unknown_tool_reported() -> None:
    call = split_everywhere("<|tool_call>call:nope{a:1}<tool_call|>", tools=TOOLS).tool_calls[0]
    assert (
        call.name == "nope"
        and call.arguments == {"a": 1}
        and "unknown tool 'nope'" in (call.error or "")
    )


def test_20_duplicate_keys_last_wins() -> None:
    assert split_everywhere("<|tool_call>call:f{a:1,a:2}").tool_calls[0].arguments == {"a": 2}


def test_stray_markers_dropped() -> None:
    out = split_everywhere(
        "<bos>A<|think|><tool_call|><|tool><tool|><|image|><tool_response|>B<turn|>"
    )
    assert out.content == "AB"


def test_turn_open_is_a_stop_and_later_text_ignored() -> None:
    out = split_everywhere("A<|turn>user\nmore")
    assert out.stop == "<|turn>" and out.content == "A"


def test_markers_inside_string_values_are_text() -> None:
    out = split_everywhere('<|tool_call>call:f{a:<|"|>x<|channel>y<tool|>z<|"|>}<tool_call|>')
    assert out.tool_calls[0].arguments == {"a": "x<|channel>y<tool|>z"}


def test_deeply_nested_input_does_not_recurse() -> None:
    text = "<|tool_call>call:f{a:" + "[" * 20000 + "]" * 20000 + "}"
    call = parse_output(text).tool_calls[0]
    assert call.complete


# --- ids and events -------------------------------------------------------------------------


def test_feed_ids_control_tokens_by_id_only() -> None:
    tok = ByteTokenizer()
    # The model writes markup as ordinary tokens: it is text, not structure.
    ids = [*tok.encode_text("Use <turn|> and <|tool_call> to "), tok.control_id("<turn|>")]
    p = StreamParser(tokenizer=tok)
    p.feed_ids(ids)
    out = p.finish()
    assert (
        out.content == "Use <turn|> and <|tool_call> to"
        and out.stop == "<turn|>"
        and out.tool_calls == []
    )


def test_prompt_tail_ids() -> None:
    tok = ByteTokenizer()
    tail = tok.encode("<tool_response|><|channel>thought\n")
    p = StreamParser(tokenizer=tok, prompt_tail_ids=tail)
    p.feed_ids(tok.encode("r<channel|>A<turn|>"))
    assert (p.finish().reasoning, p.finish().content) == ("r", "A")


def test_round_trip_through_safe_ids_with_control_strings_in_payload() -> None:
    """What the model would see rendered can be parsed back by id, even with markup in strings."""
    tok = ByteTokenizer()
    args = {"code": 'print("<turn|>", "<|\\"|>")\n{}', "n": [1, None]}
    msgs = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": args}}],
        },
    ]
    ids = render_ids(msgs, None, tok, variant="E4B", add_generation_prompt=False)
    start = len(render_ids(msgs[:1], None, tok, variant="E4B")) - 1  # from <|tool_call>
    p = StreamParser(tokenizer=tok)
    for i in ids[start:]:
        p.feed_ids([i])
    out = p.finish()
    assert out.tool_calls[0].arguments == args and out.stop == "<|tool_response>"


def test_tokenize_tool_responses_is_safe() -> None:
    tok = ByteTokenizer()
    ids = tokenize_tool_responses([("f", "a <turn|> b")], tok, enable_thinking=True)
    assert (
        tok.decode(ids)
        == 'response:f{value:<|"|>a <turn|> b<|"|>}<tool_response|><|channel>thought\n'
    )
    assert tok.control_id("<turn|>") not in ids


def collect(events: list[Any]) -> dict[str, Any]:
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    starts = [(e.index, e.name) for e in events if isinstance(e, ToolCallStart)]
    args: dict[int, str] = {}
    for e in events:
        if isinstance(e, ToolCallArgsDelta):
            args[e.index] = args.get(e.index, "") + e.text
    ends = [e.call for e in events if isinstance(e, ToolCallEnd)]
    return {
        "reasoning": reasoning,
        "content": content,
        "starts": starts,
        "args": args,
        "ends": ends,
    }


def test_streaming_events_match_final_for_every_chunking() -> None:
    text = (
        "<|channel>thought\nLet me think.\nMore.\n<channel|>  Pre text \n"
        '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>,days:2}<tool_call|>'
        "<|tool_call>call:get_weather{city:Rome}<tool_call|><|tool_response>"
    )
    final = parse_output(text, TOOLS)
    for size in (1, 2, 3, 7, 50, len(text)):
        p = StreamParser(TOOLS)
        events: list[Any] = []
        for i in range(0, len(text), size):
            events += p.feed_text(text[i : i + size])
        assert p.finish() == final
        got = collect(events)
        assert got["reasoning"] == final.reasoning == "Let me think.\nMore."
        assert got["content"] == final.content == "Pre text"
        assert got["starts"] == [(0, "get_weather"), (1, "get_weather")]
        assert got["args"] == {0: '{city:<|"|>Paris<|"|>,days:2}', 1: "{city:Rome}"}
        assert got["ends"] == final.tool_calls


def test_events_are_emitted_as_soon_as_possible() -> None:
    p = StreamParser()
    assert p.feed_text("<|channel>") == []
    assert p.feed_text("thou") == []  # maybe the label
    assert p.feed_text("ght\nDeep") == [ReasoningDelta("Deep")]
    assert p.feed_text("<chan") == []  # maybe a marker
    assert p.feed_text("nel|>Hi") == [ContentDelta("Hi")]
    assert p.feed_text("<|tool_call>call:f{") == [ToolCallStart(0, "f"), ToolCallArgsDelta(0, "{")]
    events = p.feed_text("}<tool_call|>")
    assert isinstance(events[-1], ToolCallEnd) and events[-1].call.name == "f"


def test_finish_is_idempotent_and_feeding_after_done_is_ignored() -> None:
    p = StreamParser()
    p.feed_text("A<turn|>")
    assert p.feed_text("B") == []
    assert p.finish() is p.finish()
    assert p.finish().content == "A"


def test_tools_accept_objects_with_declaration() -> None:
    class FakeTool:
        def declaration(self) -> dict[str, Any]:
            return WEATHER

    assert parse_output('<|tool_call>call:get_weather{days:<|"|>4<|"|>}', [FakeTool()]).tool_calls[
        0
    ].arguments == {"days": 4}


# --- unions, calls cut off before their arguments, a stray colon before call: ---------------

Q = '<|"|>'
PICK = {
    "type": "function",
    "function": {
        "name": "pick",
        "description": "p",
        "parameters": {
            "type": "object",
            "properties": {
                "int_first": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "str_first": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "listed": {"type": ["string", "integer", "null"]},
                "flag_or_num": {"oneOf": [{"type": "boolean"}, {"type": "number"}]},
                "ids": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                "grid": {"type": "array", "items": {"type": "array", "items": {"type": ["string", "integer"]}}},
            },
        },
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("key", "written", "value"),
    [
        # A bare value stays in the first alternative it fits as written; a quoted one is a string.
        ("int_first", "5", 5),
        ("int_first", f"{Q}5{Q}", "5"),
        ("int_first", "abc", "abc"),
        ("int_first", f"{Q}abc{Q}", "abc"),
        ("int_first", "5.5", "5.5"),  # not an integer: the string alternative takes its text
        ("str_first", "5", 5),
        ("str_first", "-3", -3),
        ("str_first", f"{Q}5{Q}", "5"),
        ("str_first", "abc", "abc"),
        ("listed", "5", 5),
        ("listed", f"{Q}5{Q}", "5"),
        ("listed", "null", None),
        ("flag_or_num", "true", True),
        ("flag_or_num", "2.5", 2.5),
        ("flag_or_num", f"{Q}7{Q}", 7),  # no alternative takes a string: converted
        ("ids", f"[1,{Q}1{Q},x]", [1, "1", "x"]),
        ("grid", f"[[1,{Q}1{Q}],[]]", [[1, "1"], []]),
    ],
)
def test_union_keeps_a_value_in_the_first_alternative_it_fits(
    key: str, written: str, value: Any
) -> None:
    out = split_everywhere(f"<|tool_call>call:pick{{{key}:{written}}}<tool_call|>", tools=[PICK])
    call = out.tool_calls[0]
    assert call.error is None and call.arguments == {key: value}
    assert type(call.arguments[key]) is type(value)


def test_union_of_a_pydantic_model_and_the_rendered_declaration() -> None:
    from gemma_agent.prompts import normalize_schema, render_chat, tool_declaration
    from pydantic import BaseModel

    class Args(BaseModel):
        n: int | str
        m: str | int | None = None

    tool = {"name": "f", "parameters": Args}
    text = f"<|tool_call>call:f{{m:7,n:{Q}5{Q}}}<tool_call|>"
    assert parse_output(text, [tool]).tool_calls[0].arguments == {"m": 7, "n": "5"}
    assert parse_output("<|tool_call>call:f{n:5}", [tool]).tool_calls[0].arguments == {"n": 5}
    # The alternatives are for the parser: the model sees one type and the list in words, as
    # before, and normalizing twice (a Tool's declaration, then the parser) keeps them.
    decl = tool_declaration("f", "d", PICK["function"]["parameters"])  # type: ignore[index]
    rendered = render_chat([{"role": "user", "content": "hi"}], [decl])
    assert "x-" not in rendered and "One of: integer, string." in rendered
    assert (
        f"ids:{{items:{{description:{Q}One of: string, integer.{Q},type:{Q}STRING{Q}}}," in rendered
    )
    params = decl["function"]["parameters"]
    assert normalize_schema(params) == params
    assert normalize_schema(Args)["properties"]["m"]["nullable"] is True


@pytest.mark.parametrize(
    "text",
    [
        "<|tool_call>cal",
        "<|tool_call>",
        "<|tool_call>call:get_weather",
        "<|tool_call>:",
        'Checking.<|tool_call>call:get_weather{city:<|"|>Oslo<|"|>}<tool_call|><|tool_call>call:get',
    ],
)
def test_call_cut_off_before_its_arguments_is_no_call(text: str) -> None:
    out = split_everywhere(text, tools=TOOLS)
    assert not out.complete and out.call_cut_off and out.stop is None
    assert [c.complete for c in out.tool_calls] == [True] * len(out.tool_calls)
    assert all(c.name == "get_weather" for c in out.tool_calls)
    for i in range(len(text) + 1):  # and no event ever announced it
        p = StreamParser(TOOLS)
        events = p.feed_text(text[:i]) + p.feed_text(text[i:]) + p.flush()
        assert collect(events)["starts"] == [(j, "get_weather") for j in range(len(out.tool_calls))]


def test_call_cut_off_inside_its_arguments_is_an_incomplete_call() -> None:
    out = split_everywhere('<|tool_call>call:get_weather{city:<|"|>Ro', tools=TOOLS)
    (call,) = out.tool_calls
    assert call.name == "get_weather" and not call.complete and not out.complete
    assert call.error is not None and call.error.startswith("the call was cut off")
    assert not out.call_cut_off
    # A call ended by a marker before its arguments is malformed, not cut off: reported.
    ended = split_everywhere("<|tool_call>call:get_weather<turn|>", tools=TOOLS)
    assert [(c.name, c.complete) for c in ended.tool_calls] == [("get_weather", False)]
    assert not ended.call_cut_off and ended.stop == "<turn|>"


@pytest.mark.parametrize("close", ["<tool_call|>", "<tool_call|><|tool_response>", ""])
def test_stray_colon_before_call_prefix(close: str) -> None:
    bash = {"name": "bash", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}  # fmt: skip
    text = f"<|tool_call>:call:bash{{command:{Q}pytest{Q}}}{close}"
    out = split_everywhere(text, tools=[bash])
    (call,) = out.tool_calls
    assert (call.name, call.arguments, call.complete, call.error) == (
        "bash",
        {"command": "pytest"},
        True,
        None,
    )
    tok = ByteTokenizer()
    ids = tok.encode(text)
    for i in range(len(text) + 1):  # the streamed name too, by text and by id, at every split
        p = StreamParser([bash])
        events = p.feed_text(text[:i]) + p.feed_text(text[i:]) + p.flush()
        assert collect(events)["starts"] == [(0, "bash")]
        assert p.finish() == out
    for i in range(len(ids) + 1):
        q = StreamParser([bash], tokenizer=tok)
        events = q.feed_ids(ids[:i]) + q.feed_ids(ids[i:]) + q.flush()
        assert collect(events)["starts"] == [(0, "bash")]
        assert q.finish() == out
