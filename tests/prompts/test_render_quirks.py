"""Every rendering rule and quirk of docs/format.md, one small case each."""

from __future__ import annotations

from typing import Any

import pytest
from gemma_agent.errors import ConfigError, RenderError
from gemma_agent.prompts import (
    family_from_template,
    render_chat,
    render_tool_responses,
    template_family,
)


def Q(x: str) -> str:
    return '<|"|>' + x + '<|"|>'


def decl(function: dict[str, Any]) -> str:
    """The text between <|tool> and <tool|> for one tool."""
    out = render_chat([], [{"type": "function", "function": function}], variant="E4B")
    start = out.index("<|tool>") + len("<|tool>")
    return out[start : out.index("<tool|>")]


def prop(schema: dict[str, Any], key: str = "u") -> str:
    """Rendering of one property inside parameters.properties."""
    text = decl({"name": "f", "parameters": {"type": "object", "properties": {key: schema}}})
    start = text.index("properties:{") + len("properties:{")
    return text[start : text.rindex("},type:")]


def body(messages: list[dict[str, Any]], **kw: Any) -> str:
    """Rendering after <bos> for the small family."""
    kw.setdefault("variant", "E4B")
    out = render_chat(messages, **kw)
    assert out.startswith("<bos>")
    return out[len("<bos>") :]


U = {"role": "user", "content": "q"}


# --- system turn ----------------------------------------------------------------------------------


def test_no_system_turn_without_thinking_tools_or_system() -> None:
    assert body([U]) == "<|turn>user\nq<turn|>\n<|turn>model\n"
    assert body([U], tools=[]) == "<|turn>user\nq<turn|>\n<|turn>model\n"


@pytest.mark.parametrize(
    ("thinking", "system", "tools", "turn"),
    [
        (True, None, False, "<|turn>system\n<|think|>\n<turn|>\n"),
        (True, "S", False, "<|turn>system\n<|think|>\nS<turn|>\n"),
        (
            True,
            None,
            True,
            '<|turn>system\n<|think|>\n<|tool>declaration:now{description:<|"|><|"|>}<tool|><turn|>\n',
        ),
        (
            False,
            "S",
            True,
            '<|turn>system\nS<|tool>declaration:now{description:<|"|><|"|>}<tool|><turn|>\n',
        ),
    ],
)
def test_system_turn_table(thinking: bool, system: str | None, tools: bool, turn: str) -> None:
    msgs = ([{"role": "system", "content": system}] if system else []) + [U]
    tl = [{"type": "function", "function": {"name": "now"}}] if tools else None
    out = body(msgs, tools=tl, enable_thinking=thinking)
    assert out.startswith(turn + "<|turn>user\n")


def test_system_text_trimmed_and_list_parts_get_a_space_each() -> None:
    assert body([{"role": "system", "content": "  A \n"}]).startswith("<|turn>system\nA<turn|>")
    parts = [{"type": "text", "text": " A "}, {"type": "text", "text": "B"}, {"type": "image"}]
    assert body([{"role": "developer", "content": parts}]).startswith("<|turn>system\nA B  <turn|>")


def test_declarations_in_given_order_back_to_back() -> None:
    tools = [{"type": "function", "function": {"name": n, "description": n}} for n in ("b", "a")]
    out = body([{"role": "system", "content": "agent."}, U], tools=tools)
    assert out.startswith(
        f"<|turn>system\nagent.<|tool>declaration:b{{description:{Q('b')}}}<tool|>"
        f"<|tool>declaration:a{{description:{Q('a')}}}<tool|><turn|>\n"
    )


# --- turns and roles ------------------------------------------------------------------------------


def test_late_system_and_unknown_roles_are_verbatim() -> None:
    msgs = [
        U,
        {"role": "system", "content": " late "},
        {"role": "developer", "content": "d"},
        {"role": "critic", "content": "c"},
    ]
    assert body(msgs) == (
        "<|turn>user\nq<turn|>\n<|turn>system\nlate<turn|>\n<|turn>developer\nd<turn|>\n"
        "<|turn>critic\nc<turn|>\n<|turn>model\n"
    )


def test_user_parts_trimmed_and_media_placeholders() -> None:
    parts = [
        {"type": "text", "text": " look: "},
        {"type": "image"},
        {"type": "text", "text": "ok "},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "audio"},
        {"type": "input_audio"},
        {"type": "video"},
        {"type": "file"},
    ]
    assert body([{"role": "user", "content": parts}]).startswith(
        "<|turn>user\nlook:<|image|>ok<|image|><|audio|><|audio|><|video|><turn|>\n"
    )


def test_empty_model_content_still_makes_a_turn() -> None:
    msgs = [U, {"role": "assistant", "content": ""}, U]
    assert "<|turn>model\n<turn|>\n<|turn>user" in body(msgs)


def test_none_valued_keys_are_dropped() -> None:
    msgs = [
        {"role": "user", "content": None},
        {"role": "assistant", "content": None, "tool_calls": None},
    ]
    assert body(msgs) == "<|turn>user\n<turn|>\n<|turn>model\n<turn|>\n<|turn>model\n"


def test_no_messages_only_generation_prompt() -> None:
    assert render_chat([], variant="31B") == "<bos><|turn>model\n<|channel>thought\n<channel|>"
    assert render_chat([], variant="E2B") == "<bos><|turn>model\n"
    assert render_chat([], variant="E2B", add_generation_prompt=False) == "<bos>"


# --- tool declarations ----------------------------------------------------------------------------


def test_missing_and_none_tool_description() -> None:
    assert decl({"name": "now"}) == f"declaration:now{{description:{Q('')}}}"
    assert (
        decl({"name": "now", "description": None}) == f"declaration:now{{description:{Q('None')}}}"
    )


def test_no_argument_tools() -> None:
    assert decl(
        {"name": "now", "description": "Time.", "parameters": {"type": "object", "properties": {}}}
    ) == (f"declaration:now{{description:{Q('Time.')},parameters:{{type:{Q('OBJECT')}}}}}")
    assert (
        decl({"name": "now", "description": "Time.", "parameters": {}})
        == f"declaration:now{{description:{Q('Time.')}}}"
    )


def test_parameters_without_type_are_left_open_and_extra_keywords_dropped() -> None:
    params = {
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
        "title": "T",
    }
    assert decl({"name": "f", "description": "d", "parameters": params}) == (
        f"declaration:f{{description:{Q('d')},parameters:{{properties:{{a:{{type:{Q('STRING')}}}}},"
        f"required:[{Q('a')}],}}"
    )


def test_required_in_input_order() -> None:
    params = {
        "type": "object",
        "properties": {"b": {"type": "string"}, "a": {"type": "string"}},
        "required": ["b", "a"],
    }
    text = decl({"name": "f", "description": "", "parameters": params})
    assert f"required:[{Q('b')},{Q('a')}],type:{Q('OBJECT')}}}" in text


def test_response_schema_object_and_non_object() -> None:
    obj = decl(
        {
            "name": "f",
            "description": "d",
            "response": {"type": "object", "description": "R", "properties": {"x": {}}},
        }
    )
    assert (
        obj
        == f"declaration:f{{description:{Q('d')},response:{{description:{Q('R')},type:{Q('OBJECT')}}}}}"
    )
    arr = decl({"name": "f", "description": "d", "response": {"type": "array", "description": "R"}})
    assert arr == f"declaration:f{{description:{Q('d')},response:{{description:{Q('R')},}}"


def test_property_fields_in_fixed_order() -> None:
    schema = {"type": "string", "enum": ["a", "b"], "nullable": True, "description": "D"}
    assert prop(schema) == (
        f"u:{{description:{Q('D')},enum:[{Q('a')},{Q('b')}],nullable:true,type:{Q('STRING')}}}"
    )


def test_sort_ci_property_keys() -> None:
    params = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ["b", "A", "a", "_x", "Z"]},
    }
    text = decl({"name": "f", "description": "", "parameters": params})
    order = [text.index(k + ":{") for k in ["_x", "A", "a", "b", "Z"]]
    assert order == sorted(order)


def test_enum_only_on_strings_and_members_bare_when_not_strings() -> None:
    assert prop({"type": "integer", "enum": [1, 2]}) == f"u:{{type:{Q('INTEGER')}}}"
    assert prop({"type": "string", "enum": ["a", 1, None, True]}) == (
        f"u:{{enum:[{Q('a')},1,null,true],type:{Q('STRING')}}}"
    )


def test_missing_type_and_list_type_quirk() -> None:
    assert prop({"description": "D"}) == f"u:{{description:{Q('D')},type:{Q('')}}}"
    assert prop({"type": ["string", "null"]}) == "u:{type:<|\"|>['STRING', 'NULL']<|\"|>}"


def test_nullable_false_omitted_and_dropped_keywords() -> None:
    schema = {
        "type": "integer",
        "nullable": False,
        "minimum": 1,
        "default": 3,
        "format": "x",
        "title": "T",
        "anyOf": [{}],
    }
    assert prop(schema) == f"u:{{type:{Q('INTEGER')}}}"


def test_nested_object_with_required() -> None:
    schema = {
        "type": "object",
        "description": "Matching options.",
        "properties": {"max_depth": {"type": "integer"}, "case_sensitive": {"type": "boolean"}},
        "required": ["case_sensitive"],
    }
    assert prop(schema, "options") == (
        'options:{description:<|"|>Matching options.<|"|>,properties:{case_sensitive:{type:<|"|>BOOLEAN<|"|>},'
        'max_depth:{type:<|"|>INTEGER<|"|>}},required:[<|"|>case_sensitive<|"|>],type:<|"|>OBJECT<|"|>}'
    )


def test_property_named_like_schema_keywords_is_kept() -> None:
    params = {
        "type": "object",
        "properties": {"description": {"type": "string"}, "type": {"type": "string"}},
    }
    text = decl({"name": "f", "description": "", "parameters": params})
    assert f"properties:{{description:{{type:{Q('STRING')}}},type:{{type:{Q('STRING')}}}}}" in text


@pytest.mark.parametrize(
    ("items", "rendered"),
    [
        ({"type": "string"}, 'items:{type:<|"|>STRING<|"|>}'),
        (
            {"type": "string", "enum": ["p"], "description": "ID", "minLength": 2},
            'items:{description:<|"|>ID<|"|>,enum:[<|"|>p<|"|>],minLength:2,type:<|"|>STRING<|"|>}',
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            'items:{items:{<|"|>type<|"|>:<|"|>string<|"|>},type:<|"|>ARRAY<|"|>}',
        ),
        (
            {
                "type": "object",
                "properties": {"b": {"type": "string"}, "a": {"type": "integer"}},
                "required": ["b", "a"],
            },
            'items:{properties:{a:{type:<|"|>INTEGER<|"|>},b:{type:<|"|>STRING<|"|>}},'
            'required:[<|"|>b<|"|>,<|"|>a<|"|>],type:<|"|>OBJECT<|"|>}',
        ),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            'items:{anyOf:[{<|"|>type<|"|>:<|"|>string<|"|>},{<|"|>type<|"|>:<|"|>integer<|"|>}]}',
        ),
        ({"type": ["string", "null"], "x": None}, 'items:{type:[<|"|>STRING<|"|>,<|"|>NULL<|"|>]}'),
        ({"required": "ab"}, 'items:{required:[<|"|>a<|"|>,<|"|>b<|"|>]}'),
    ],
)
def test_items_generic_rule(items: dict[str, Any], rendered: str) -> None:
    assert prop({"type": "array", "items": items}) == "u:{" + rendered + ',type:<|"|>ARRAY<|"|>}'


def test_empty_or_non_mapping_items_dropped() -> None:
    assert prop({"type": "array", "items": {}}) == f"u:{{type:{Q('ARRAY')}}}"
    assert prop({"type": "array", "items": [{"type": "string"}]}) == f"u:{{type:{Q('ARRAY')}}}"


def test_object_without_properties_quirk() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string"}, "title": "T"}
    assert prop(schema, "o") == (
        'o:{properties:{additionalProperties:{type:<|"|>STRING<|"|>},title:{type:<|"|><|"|>}},type:<|"|>OBJECT<|"|>}'
    )
    assert prop({"type": "object", "description": "D"}, "o") == (
        f"o:{{description:{Q('D')},properties:{{}},type:{Q('OBJECT')}}}"
    )
    assert (
        prop({"type": "object", "properties": {}}, "o")
        == f"o:{{properties:{{}},type:{Q('OBJECT')}}}"
    )


# --- tool calls and tool responses ----------------------------------------------------------------


def call(name: str, args: Any, cid: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
    if cid is not None:
        c["id"] = cid
    return c


def test_value_encoding() -> None:
    args = {
        "i": 2, "f": 2.0, "e": 1e-05, "big": 1e16, "neg": -3, "t": True, "n": None, "s": 'x "y" {z}\n',
        "empty": "", "l": [1, "two", [3], {"k": "v"}], "m": {"b": 1, "A": 2, "a": 3},
    }  # fmt: skip
    out = body([U, {"role": "assistant", "tool_calls": [call("f", args)]}])
    assert out.endswith(
        '<|turn>model\n<|tool_call>call:f{big:1e+16,e:1e-05,empty:<|"|><|"|>,f:2.0,i:2,'
        'l:[1,<|"|>two<|"|>,[3],{k:<|"|>v<|"|>}],m:{A:2,a:3,b:1},n:null,neg:-3,'
        's:<|"|>x "y" {z}\n<|"|>,t:true}<tool_call|><|tool_response>'
    )


def test_empty_and_none_arguments() -> None:
    out = body([U, {"role": "assistant", "tool_calls": [call("now", {}), call("later", None)]}])
    assert (
        "<|tool_call>call:now{}<tool_call|><|tool_call>call:later{}<tool_call|><|tool_response>"
        in out
    )


def test_string_arguments_raise_with_index_and_fix() -> None:
    msgs = [
        {"role": "system", "content": "s"},
        U,
        {"role": "assistant", "tool_calls": [call("f", '{"a": 1}')]},
    ]
    with pytest.raises(RenderError, match=r"message 2: tool_calls\[0\].*json.loads"):
        render_chat(msgs)


def test_missing_arguments_raise() -> None:
    msgs = [U, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]
    with pytest.raises(RenderError, match="message 1"):
        render_chat(msgs)


def test_call_without_function_wrapper_raises() -> None:
    with pytest.raises(RenderError, match="function"):
        render_chat([U, {"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}]}])


def test_results_native_and_openai_shapes() -> None:
    msgs = [
        U,
        {
            "role": "assistant",
            "tool_calls": [
                call("a", {}, "1"),
                call("b", {}, "2"),
                call("c", {}, "3"),
                call("d", {}, "4"),
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "2",
            "content": [
                {"type": "text", "text": " x "},
                {"type": "image"},
                {"type": "text", "text": "y"},
            ],
        },
        {"role": "tool", "tool_call_id": "1", "content": None},
        {"role": "tool", "tool_call_id": "3", "content": 12.5},
        {"role": "tool", "tool_call_id": "nope", "name": "named", "content": "s"},
        {"role": "tool", "tool_call_id": "nope", "content": True},
    ]
    out = body(msgs)
    assert out.endswith(
        '<|tool_response>response:b{value:<|"|> x y<|"|>}<tool_response|><|image|>'
        "<|tool_response>response:a{value:null}<tool_response|>"
        "<|tool_response>response:c{value:12.5}<tool_response|>"
        '<|tool_response>response:named{value:<|"|>s<|"|>}<tool_response|>'
        "<|tool_response>response:unknown{value:true}<tool_response|>"
    )


def test_native_result_values() -> None:
    responses = [
        {
            "name": "get_weather",
            "response": {"temperature": 15, "weather": "sunny", "humid": False},
        },
        {"name": "", "response": [1, 2]},
        {"name": "d", "response": {}},
        {"response": None},
    ]
    out = body(
        [U, {"role": "assistant", "tool_calls": [call("f", {})], "tool_responses": responses}]
    )
    assert out.endswith(
        "<|tool_call>call:f{}<tool_call|>"
        '<|tool_response>response:get_weather{humid:false,temperature:15,weather:<|"|>sunny<|"|>}<tool_response|>'
        "<|tool_response>response:unknown{value:[1,2]}<tool_response|>"
        "<|tool_response>response:d{}<tool_response|>"
        "<|tool_response>response:unknown{value:null}<tool_response|>"
    )


def test_native_results_win_over_tool_messages() -> None:
    msgs = [
        U,
        {
            "role": "assistant",
            "tool_calls": [call("f", {}, "1")],
            "tool_responses": [{"name": "f", "response": "native"}],
        },
        {"role": "tool", "tool_call_id": "1", "content": "dropped"},
    ]
    out = body(msgs)
    assert "native" in out and "dropped" not in out


def test_without_ids_every_result_is_named_after_the_last_call() -> None:
    msgs = [
        U,
        {"role": "assistant", "tool_calls": [call("first", {}), call("last", {})]},
        {"role": "tool", "name": "first", "content": "r1"},
        {"role": "tool", "content": "r2"},
    ]
    out = body(msgs)
    assert 'response:last{value:<|"|>r1<|"|>}' in out and 'response:last{value:<|"|>r2<|"|>}' in out


def test_dict_tool_content_raises_with_fix() -> None:
    msgs = [
        U,
        {"role": "assistant", "tool_calls": [call("f", {}, "1")]},
        {"role": "tool", "tool_call_id": "1", "content": {"a": 1}},
    ]
    with pytest.raises(RenderError, match=r"message 2.*tool_responses"):
        render_chat(msgs)


def test_orphan_tool_messages_dropped() -> None:
    msgs = [
        U,
        {"role": "tool", "content": {"a": 1}},
        {"role": "assistant", "content": "x"},
        {"role": "tool", "content": "y"},
    ]
    assert body(msgs) == "<|turn>user\nq<turn|>\n<|turn>model\nx<turn|>\n<|turn>model\n"


# --- placement within a model turn, generation prompt ---------------------------------------------


def test_results_then_content_in_same_turn() -> None:
    msgs = [
        U,
        {
            "role": "assistant",
            "content": "Let me check.",
            "reasoning": "R",
            "tool_calls": [call("f", {"a": 1}, "1")],
        },
        {"role": "tool", "tool_call_id": "1", "content": "ok"},
    ]
    out = body(msgs, add_generation_prompt=False)
    assert out.endswith(
        "<|turn>model\n<|channel>thought\nR\n<channel|><|tool_call>call:f{a:1}<tool_call|>"
        '<|tool_response>response:f{value:<|"|>ok<|"|>}<tool_response|>Let me check.<turn|>\n'
    )


def test_split_message_keeps_generation_order() -> None:
    msgs = [
        U,
        {"role": "assistant", "reasoning": "R", "content": "Let me check."},
        {"role": "assistant", "tool_calls": [call("f", {}, "1")]},
        {"role": "tool", "tool_call_id": "1", "content": "ok"},
    ]
    assert body(msgs).endswith(
        "<|turn>model\n<|channel>thought\nR\n<channel|>Let me check.<|tool_call>call:f{}<tool_call|>"
        '<|tool_response>response:f{value:<|"|>ok<|"|>}<tool_response|>'
    )


def test_adjacent_assistants_merge() -> None:
    msgs = [U, {"role": "assistant", "content": "One."}, {"role": "assistant", "content": " Two. "}]
    assert (
        body(msgs, add_generation_prompt=False)
        == "<|turn>user\nq<turn|>\n<|turn>model\nOne.Two.<turn|>\n"
    )


def test_calls_without_results_then_user_is_dangling() -> None:
    msgs = [U, {"role": "assistant", "tool_calls": [call("f", {})]}, U]
    assert body(msgs) == (
        "<|turn>user\nq<turn|>\n<|turn>model\n<|tool_call>call:f{}<tool_call|><|tool_response>"
        "<|turn>user\nq<turn|>\n<|turn>model\n"
    )


@pytest.mark.parametrize(
    ("variant", "thinking", "tail"),
    [("31B", False, "<|turn>model\n<|channel>thought\n<channel|>"), ("31B", True, "<|turn>model\n"),
     ("E4B", False, "<|turn>model\n"), ("E2B", True, "<|turn>model\n")],
)  # fmt: skip
def test_generation_prompt_of_a_new_model_turn(variant: str, thinking: bool, tail: str) -> None:
    for msgs in (
        [U],
        [U, {"role": "assistant", "content": "a"}],
        [{"role": "system", "content": "s"}],
    ):
        assert render_chat(msgs, variant=variant, enable_thinking=thinking).endswith(
            "<turn|>\n" + tail
        )


@pytest.mark.parametrize("variant", ["31B", "E4B"])
@pytest.mark.parametrize("thinking", [False, True])
def test_generation_prompt_after_calls_results_and_content(variant: str, thinking: bool) -> None:
    results = {
        "role": "assistant",
        "tool_calls": [call("f", {})],
        "tool_responses": [{"name": "f", "response": 1}],
    }
    g2 = render_chat([U, results], variant=variant, enable_thinking=thinking)
    assert g2.endswith("<tool_response|>" + ("<|channel>thought\n" if thinking else ""))
    g3 = render_chat(
        [U, {"role": "assistant", "tool_calls": [call("f", {})]}],
        variant=variant,
        enable_thinking=thinking,
    )
    assert g3.endswith("<tool_call|><|tool_response>")
    g4 = render_chat([U, {**results, "content": "done"}], variant=variant, enable_thinking=thinking)
    assert g4.endswith(
        "<tool_response|>done<turn|>\n" + ("<|channel>thought\n" if thinking else "")
    )


def test_results_empty_content_followed_by_user_closes_turn() -> None:
    results = {
        "role": "assistant",
        "tool_calls": [call("f", {})],
        "tool_responses": [{"name": "f", "response": 1}],
    }
    assert "<tool_response|><turn|>\n<|turn>user\n" in body([U, results, U])


# --- history rules --------------------------------------------------------------------------------


def test_reasoning_only_after_last_user_unless_preserved_with_calls() -> None:
    msgs = [
        U,
        {"role": "assistant", "reasoning": "R1", "content": "a"},
        {
            "role": "assistant",
            "reasoning": "R2",
            "tool_calls": [call("f", {})],
            "tool_responses": [{"name": "f", "response": 1}],
        },
        U,
        {"role": "assistant", "reasoning": "R3\n", "content": "b"},
    ]
    out = body(msgs, enable_thinking=False)
    assert "R1" not in out and "R2" not in out and "<|channel>thought\nR3\n\n<channel|>b" in out
    kept = body(msgs, preserve_thinking=True)
    assert "R1" not in kept and "<|channel>thought\nR2\n<channel|><|tool_call>" in kept


def test_reasoning_aliases() -> None:
    for key in ("reasoning", "reasoning_content", "thinking"):
        out = body([U, {"role": "assistant", key: "T", "content": "a"}])
        assert "<|channel>thought\nT\n<channel|>a" in out
    both = body(
        [U, {"role": "assistant", "reasoning": "", "reasoning_content": "RC", "content": "a"}]
    )
    assert "thought\nRC\n" in both


@pytest.mark.parametrize(
    ("content", "rendered"),
    [
        ("th<channel|>after", "thafter"),
        ("X <|channel>b<channel|> Y", "X  Y"),
        ("A<|channel>unclosed", "A"),
        ("<|channel>thought\nx<channel|>  kept  ", "kept"),
    ],
)
def test_inline_thought_blocks(content: str, rendered: str) -> None:
    out = body([U, {"role": "assistant", "content": content}], add_generation_prompt=False)
    assert out.endswith("<|turn>model\n" + rendered + "<turn|>\n")
    parts = body(
        [
            U,
            {
                "role": "assistant",
                "content": [{"type": "text", "text": content}, {"type": "text", "text": " z "}],
            },
        ],
        add_generation_prompt=False,
    )
    assert parts.endswith("<|turn>model\n" + rendered + "z<turn|>\n")


def test_tool_result_and_argument_strings_not_trimmed() -> None:
    msgs = [
        U,
        {"role": "assistant", "tool_calls": [call("f", {"a": " x "}, "1")]},
        {"role": "tool", "tool_call_id": "1", "content": " r "},
    ]
    out = body(msgs)
    assert '{a:<|"|> x <|"|>}' in out and '{value:<|"|> r <|"|>}' in out


def test_user_dict_content_renders_empty() -> None:
    assert (
        body([{"role": "user", "content": {"type": "text"}}])
        == "<|turn>user\n<turn|>\n<|turn>model\n"
    )


def test_missing_role_raises() -> None:
    with pytest.raises(RenderError, match="message 0"):
        render_chat([{"content": "x"}])


def test_non_mapping_message_raises() -> None:
    with pytest.raises(RenderError, match="message 0"):
        render_chat(["hello"])


# --- typed messages and objects ----------------------------------------------------------------


def test_pydantic_messages_are_plain_data() -> None:
    from pydantic import BaseModel

    class Msg(BaseModel):
        role: str
        content: str | None = None

    assert render_chat([Msg(role="user", content="q")], variant="E4B") == render_chat(
        [U], variant="E4B"
    )


def test_agent_typed_messages_render_through_the_same_path() -> None:
    from gemma_agent.agent.messages import ModelTurn, ToolCall, ToolResult, UserMessage

    turn = ModelTurn(
        reasoning="R",
        text="Let me check.",
        tool_calls=(ToolCall(id="c1", name="f", arguments={"a": 1}),),
        tool_results=(ToolResult(call_id="c1", name="f", content={"ok": True}),),
    )
    typed = render_chat([UserMessage(content="q"), turn], variant="E4B")
    plain = render_chat(
        [
            U,
            {"role": "assistant", "reasoning": "R", "content": "Let me check."},
            {
                "role": "assistant",
                "tool_calls": [call("f", {"a": 1}, "c1")],
                "tool_responses": [{"name": "f", "response": {"ok": True}}],
            },
        ],
        variant="E4B",
    )
    assert typed == plain
    assert typed.endswith(
        "<|channel>thought\nR\n<channel|>Let me check.<|tool_call>call:f{a:1}<tool_call|><|tool_response>response:f{ok:true}<tool_response|>"
    )


@pytest.mark.parametrize("variant", ["31B", "E4B"])
def test_tool_results_with_attachments_render_their_media_placeholders(variant: str) -> None:
    """Media of a tool result follow its <tool_response|>, as in the OpenAI tool shape."""
    from gemma_agent.agent.messages import Attachment, ModelTurn, ToolCall, ToolResult, UserMessage

    shot = Attachment(kind="image", name="s.png", mime="image/png", data_b64="AA==")
    clip = Attachment(kind="audio", name="a.wav", mime="audio/wav", data_b64="AA==")
    turn = ModelTurn(
        tool_calls=(
            ToolCall(id="c1", name="screenshot", arguments={}),
            ToolCall(id="c2", name="count", arguments={}),
            ToolCall(id="c3", name="stat", arguments={}),
        ),
        tool_results=(
            ToolResult(call_id="c1", name="screenshot", content="the page", attachments=(shot,)),
            ToolResult(call_id="c2", name="count", content=3),
            ToolResult(call_id="c3", name="stat", content={"b": 1}, attachments=(clip, shot)),
        ),
    )
    answer = ModelTurn(text="It shows a form.")
    typed = render_chat([UserMessage(content="q"), turn, answer], variant=variant)
    assert (
        '<|tool_response>response:screenshot{value:<|"|>the page<|"|>}<tool_response|><|image|>'
        "<|tool_response>response:count{value:3}<tool_response|>"
        '<|tool_response>response:stat{value:<|"|>{"b": 1}<|"|>}<tool_response|><|audio|><|image|>'
        "It shows a form.<turn|>\n"
    ) in typed
    # the same as the OpenAI tool-message input the template documents
    plain = render_chat(
        [
            U,
            {"role": "assistant", "tool_calls": [call("screenshot", {}, "c1"), call("count", {}, "c2"), call("stat", {}, "c3")]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "the page"}, {"type": "image"}]},
            {"role": "tool", "tool_call_id": "c2", "content": 3},
            {"role": "tool", "tool_call_id": "c3", "content": [{"type": "text", "text": '{"b": 1}'}, {"type": "audio"}, {"type": "image"}]},
            {"role": "assistant", "content": "It shows a form."},
        ],
        variant=variant,
    )  # fmt: skip
    assert typed == plain
    # without attachments the results stay native (a mapping renders as a mapping)
    bare = turn.model_copy(
        update={
            "tool_results": tuple(
                r.model_copy(update={"attachments": ()}) for r in turn.tool_results
            )
        }
    )
    assert "response:stat{b:1}<tool_response|>" in render_chat(
        [UserMessage(content="q"), bare], variant=variant
    )


# --- families, continuation ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "7B", "gemma-3-4b", "E3B", "26B E4B"])
def test_unknown_variant_is_a_config_error_listing_valid_ones(bad: str) -> None:
    with pytest.raises(ConfigError, match="E2B, E4B, 12B, 26B-A4B, 31B"):
        template_family(bad)


def test_family_from_template_hashes() -> None:
    assert family_from_template("not the template") is None


@pytest.mark.parametrize("variant", ["31B", "E4B"])
@pytest.mark.parametrize("thinking", [False, True])
def test_append_equals_full_render(variant: str, thinking: bool) -> None:
    """The continuation after a tool round is an exact append to the canonical prompt."""
    history: list[dict[str, Any]] = [{"role": "system", "content": "s"}, U]
    rounds = [
        (
            [call("f", {"x": "a"}, "1"), call("g", {}, "2")],
            [("f", {"b": 2, "A": [1]}), ("g", "text")],
        ),
        ([call("h", {"n": 1.5}, "3")], [("h", None)]),
    ]
    for calls, results in rounds:
        before = render_chat([*history, {"role": "assistant", "reasoning": "why", "tool_calls": calls}],
                             variant=variant, enable_thinking=thinking)  # fmt: skip
        native = [{"name": n, "response": r} for n, r in results]
        history.append(
            {"role": "assistant", "reasoning": "why", "tool_calls": calls, "tool_responses": native}
        )
        after = render_chat(history, variant=variant, enable_thinking=thinking)
        assert before.endswith("<|tool_response>")
        assert before + render_tool_responses(results, enable_thinking=thinking) == after


def test_tool_responses_values() -> None:
    assert render_tool_responses(
        [("a", {"z": 1, "Y": "s"}), ("b", [1]), ("c", "t")], enable_thinking=False
    ) == (
        'response:a{Y:<|"|>s<|"|>,z:1}<tool_response|><|tool_response>response:b{value:[1]}<tool_response|>'
        '<|tool_response>response:c{value:<|"|>t<|"|>}<tool_response|>'
    )
    with pytest.raises(ConfigError):
        render_tool_responses([], enable_thinking=True)
