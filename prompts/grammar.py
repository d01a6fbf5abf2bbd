"""Tool-call grammars for constrained decoding (llguidance Lark syntax).

``tool_call_grammar(tools, tool_choice)`` turns tool declarations (OpenAI-style
``{"type": "function", "function": {...}}`` or bare ``{"name", "parameters"}``) into a Lark
grammar over the whole model output, in llguidance's dialect: control tokens are written as
``<|tool_call>`` and match that single token id, quoted strings and ``/regex/`` match ordinary
text. Calls follow the Gemma 4 syntax (``<|tool_call>call:NAME{key:value,...}<tool_call|>``) with
allowed names, argument keys (required ones mandatory; keys in sort_ci order, as the template
renders them), types, enums, nested objects and arrays, and ``<|"|>``-delimited strings.

tool_choice:
  "auto"      thinking and free text unconstrained; a call, once opened, is constrained;
              the output ends with ``<turn|>`` or calls followed by ``<|tool_response>``.
  "required"  an optional thought block, then one or more calls, then ``<|tool_response>``.
  "none"      no calls: free text and thinking, then ``<turn|>``.
  NAME        like "required", restricted to that tool.

Pure: no vLLM or llguidance import; the engine hands the text to vLLM's structured outputs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from . import tokens as T
from .schema import ALTERNATIVES, FULL_ITEMS

_NUMBER = r"/-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/"
_INTEGER = r"/-?(0|[1-9][0-9]*)/"
_ENUMERATE_UP_TO = 4096  # integer ranges this small are spelled out exactly


def _integer(schema: Mapping[str, Any]) -> str:
    """An integer, within the schema's bounds where a regular language can say so cheaply."""
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        lo = math.floor(schema["exclusiveMinimum"]) + 1
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        hi = math.ceil(schema["exclusiveMaximum"]) - 1
    lo = math.ceil(lo) if isinstance(lo, int | float) else None
    hi = math.floor(hi) if isinstance(hi, int | float) else None
    if lo is not None and hi is not None and 0 <= hi - lo < _ENUMERATE_UP_TO:
        return "/(" + "|".join(str(n) for n in range(lo, hi + 1)) + ")/"
    if lo is not None and lo >= 1:
        return r"/[1-9][0-9]*/"  # the exact lower bound is left to validation
    if lo == 0:
        return r"/(0|[1-9][0-9]*)/"
    return _INTEGER


_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _lit(text: str) -> str:
    """A Lark string literal (JSON escaping is accepted by llguidance)."""
    return json.dumps(text, ensure_ascii=False)


def _sort_ci(keys: Sequence[str]) -> list[str]:
    return sorted(keys, key=str.lower)


class _Builder:
    def __init__(self, max_string_chars: int | None) -> None:
        self.rules: dict[str, str] = {}
        self.max_string_chars = max_string_chars
        self._n = 0
        self._generic_done = False

    def new_rule(self, stem: str, body: str) -> str:
        self._n += 1
        name = f"{re.sub(r'[^a-z0-9_]', '_', stem.lower())[:24]}_{self._n}"
        self.rules[name] = body
        return name

    # -- values -------------------------------------------------------------------------
    def string(self, max_len: int | None = None) -> str:
        limit = max_len if max_len is not None else self.max_string_chars
        # String contents are ordinary text (no control tokens), quotes/braces allowed.
        body = f"/(?s:.{{0,{int(limit)}}})/" if limit is not None else "/(?s:.*)/"
        return f'<|"|> {body} <|"|>'

    def generic(self) -> str:
        """Any value of the Gemma 4 value syntax (used where the schema says nothing)."""
        if not self._generic_done:
            self._generic_done = True
            s = self.string()
            self.rules["gvalue"] = f'{s} | {_NUMBER} | "true" | "false" | "null" | gobject | garray'
            self.rules["gobject"] = '"{" (gpair ("," gpair)*)? "}"'
            self.rules["gpair"] = '/[A-Za-z_][A-Za-z0-9_]*/ ":" gvalue'
            self.rules["garray"] = '"[" (gvalue ("," gvalue)*)? "]"'
        return "gvalue"

    def value(self, schema: Any, stem: str, depth: int = 0) -> str:
        if not isinstance(schema, Mapping) or depth > 12:
            return self.generic()
        alts: list[str] = []
        for key in ("anyOf", "oneOf", ALTERNATIVES):  # a normalized union keeps its alternatives
            if isinstance(schema.get(key), list):
                alts += [self.value(s, stem, depth + 1) for s in schema[key]]
        if alts:
            if schema.get("nullable"):
                alts.append('"null"')
            return self.new_rule(stem, " | ".join(f"({a})" for a in alts))
        if "const" in schema:
            return self.literal(schema["const"])
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            alt = " | ".join(self.literal(v) for v in enum)
            return self.new_rule(stem, alt)
        types = schema.get("type")
        type_list = types if isinstance(types, list) else [types] if types else []
        nullable = bool(schema.get("nullable")) or "null" in type_list
        type_list = [t for t in type_list if t != "null"]
        if not type_list:
            return "(" + self.generic() + ' | "null")' if nullable else self.generic()
        parts = [self.typed(t, schema, stem, depth) for t in type_list]
        if nullable:
            parts.append('"null"')
        return parts[0] if len(parts) == 1 else self.new_rule(stem, " | ".join(parts))

    def typed(self, t: str, schema: Mapping[str, Any], stem: str, depth: int) -> str:
        if t == "string":
            max_len = schema.get("maxLength")
            return self.string(max_len if isinstance(max_len, int) else None)
        if t == "integer":
            return _integer(schema)
        if t == "number":
            return _NUMBER
        if t == "boolean":
            return '("true" | "false")'
        if t == "array":
            items = schema.get(FULL_ITEMS, schema.get("items"))  # a union's items keep theirs
            item = self.value(items, stem + "_item", depth + 1)
            if isinstance(schema.get("minItems"), int) and schema["minItems"] >= 1:
                return self.new_rule(stem + "_array", f'"[" {item} ("," {item})* "]"')
            return self.new_rule(stem + "_array", f'"[" ({item} ("," {item})*)? "]"')
        if t == "object":
            props = schema.get("properties")
            if isinstance(props, Mapping) and props:
                required = schema.get("required") or []
                body = self.pairs(props, required, stem, depth)
                return self.new_rule(stem + "_object", f'"{{" {body} "}}"')
            return self.generic_object()
        return self.generic()

    def generic_object(self) -> str:
        self.generic()
        return "gobject"

    def literal(self, v: Any) -> str:
        if isinstance(v, str):
            return f'(<|"|> {_lit(v)} <|"|>)'
        if v is None:
            return '"null"'
        if isinstance(v, bool):
            return '"true"' if v else '"false"'
        if isinstance(v, int | float):
            return _lit(str(v))
        return self.generic()

    def pairs(
        self, props: Mapping[str, Any], required: Sequence[Any], stem: str, depth: int
    ) -> str:
        """``key:value`` pairs: keys in sort_ci order, required ones mandatory."""
        keys = _sort_ci([k for k in props if isinstance(k, str)])
        req = {r for r in required if isinstance(r, str)}
        pair = {
            k: f"{_lit(k + ':')} {self.value(props[k], stem + '_' + k, depth + 1)}" for k in keys
        }

        def tail(i: int) -> str:
            # What may follow once something was written: each later key, comma-prefixed.
            out = []
            for k in keys[i:]:
                item = f'"," {pair[k]}'
                out.append(item if k in req else f"({item})?")
            return " ".join(out)

        alts: list[str] = []
        for i, k in enumerate(keys):
            alts.append(f"{pair[k]} {tail(i + 1)}".strip())
            if k in req:
                break
        else:
            # Every key optional: the empty argument list is allowed too.
            return f"({' | '.join(f'({a})' for a in alts)})?" if alts else ""
        return "(" + " | ".join(f"({a})" for a in alts) + ")"


def _function(decl: Mapping[str, Any]) -> Mapping[str, Any]:
    fn = decl.get("function", decl)
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        raise ConfigError(f"tool declaration without a name: {decl!r}")
    return fn


def tool_call_grammar(
    tools: Sequence[Mapping[str, Any]],
    tool_choice: str = "auto",
    *,
    thinking: bool = True,
    prompt_in_thought: bool = False,
    max_string_chars: int | None = None,
) -> str:
    """The Lark grammar (llguidance dialect) constraining one model output.

    ``thinking``: whether a thought block may come before forced calls ("required"/NAME);
    with thinking off the calls come first. ``prompt_in_thought``: the prompt ends inside an open
    thought channel (e.g. ends with ``<|channel>thought\\n`` after a tool round with thinking on),
    so the output may start with reasoning text closed by ``<channel|>``. ``max_string_chars``
    bounds string arguments without a ``maxLength`` (None: unbounded).
    """
    fns = [_function(t) for t in tools]
    names = [f["name"] for f in fns]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate tool names in {names}")
    for n in names:
        if not _NAME_RE.match(n):
            raise ConfigError(
                f"tool name {n!r} cannot be called in the Gemma 4 syntax: use letters, digits, "
                "'_', '.' or '-' (starting with a letter or '_')"
            )
    if tool_choice not in ("auto", "required", "none"):
        if tool_choice not in names:
            raise ConfigError(
                f"tool_choice {tool_choice!r} is not a registered tool; choose auto, required, "
                f"none or one of {sorted(names)}"
            )
        fns = [f for f in fns if f["name"] == tool_choice]
    if tool_choice == "required" and not fns:
        raise ConfigError("tool_choice='required' needs at least one tool")

    b = _Builder(max_string_chars)
    lines = ["%llguidance {}", ""]
    free = f"(TEXT | {T.CHANNEL_OPEN} | {T.CHANNEL_CLOSE})*"
    if tool_choice == "none" or not fns:
        start = f"{free} {T.TURN_CLOSE}"
    else:
        call_alts = []
        for f in fns:
            params = f.get("parameters")
            props = params.get("properties") if isinstance(params, Mapping) else None
            if isinstance(props, Mapping) and props:
                body = b.pairs(props, params.get("required") or [], f["name"], 0)  # type: ignore[union-attr]
            else:
                body = ""
            call_alts.append(b.new_rule(f"fn_{f['name']}", f'{_lit(f["name"] + "{")} {body} "}}"'))
        lines.append(
            f'call: {T.TOOL_CALL_OPEN} "call:" ({" | ".join(call_alts)}) {T.TOOL_CALL_CLOSE}'
        )
        calls = f"call+ {T.TOOL_RESPONSE_OPEN}"
        if tool_choice == "auto":
            start = f"{free} ({calls} | {T.TURN_CLOSE})"
        else:
            if prompt_in_thought:
                thought = f"(THOUGHT? {T.CHANNEL_CLOSE})?"
            elif not thinking:
                thought = ""
            else:
                thought = f"({T.CHANNEL_OPEN} THOUGHT? {T.CHANNEL_CLOSE})?"
            start = f"{thought} {calls}".strip()
    lines.insert(1, f"start: {start}")
    lines += [f"{name}: {body}" for name, body in b.rules.items()]
    lines += ["TEXT: /(?s:.+)/", "THOUGHT: /(?s:.+)/", ""]
    return "\n".join(lines)


__all__ = ["tool_call_grammar"]
