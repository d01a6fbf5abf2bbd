"""Tool-call arguments of Gemma 4 output: read the value syntax, then coerce to the schema.

``read_call`` turns one call's text (``NAME{key:value,...}``, split at the ``<|"|>`` string
delimiters) into its name and arguments (docs/format.md, 'Argument parsing and coercion'). The
reader is lenient: bare keys and values, quoted keys, ``(`` for ``{``, duplicate keys (the last
wins), junk after a value, truncation. Bare scalars keep their raw text until the declared schema
decides their type (``5`` is a string for a string parameter); a value of a union stays in the
first alternative it fits as written. Mismatches are reported, never raised. The streaming
parser (``parse.py``) calls it once per call, when the call ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import tokens as T
from .schema import ALTERNATIVES, FULL_ITEMS, normalize_schema

log = logging.getLogger(__name__)

OPENER_RE = re.compile(r"[{(]")  # the bracket that opens a call's arguments
_TOKEN_RE = re.compile(r"[{}\[\]():,]|[^{}\[\]():,]+")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_LOOSE_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def read_call(
    runs: Sequence[str], schemas: dict[str, dict[str, Any]] | None
) -> tuple[str, dict[str, Any], bool, str | None]:
    """One call's name, its arguments (coerced to the tool's schema when ``schemas`` knows it),
    whether its arguments closed, and what went wrong (None when nothing did). ``runs`` is the
    call text split at ``<|"|>`` (odd runs are string contents); ``schemas`` maps tool names to
    normalized parameter schemas (None: no tools declared, no coercion)."""
    name, args, closed = _parse_body(runs)
    errors: list[str] = []
    if schemas is None:
        arguments = _plain_value(args)
    elif name in schemas:
        arguments = (
            _coerce_object(args, schemas[name], "", errors) if schemas[name] else _plain_value(args)
        )
    else:
        arguments = _plain_value(args)
        known = ", ".join(sorted(schemas)) or "none"
        errors.append(f"unknown tool {name!r}; available tools: {known}")
    if not closed:
        errors.insert(0, "the call was cut off before its arguments were closed")
    return name, arguments, closed, "; ".join(errors) if errors else None


# ---------------------------------------------------------------------------------------------
# The value reader (docs/format.md, 'Argument parsing and coercion')


class _Bare:
    """An unquoted scalar; its raw text is kept until the schema decides its type."""

    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw


def _bare_default(raw: str) -> Any:
    if raw == "true":
        return True
    if raw == "false":
        return False
    if raw == "null":
        return None
    if _NUMBER_RE.fullmatch(raw):
        try:
            if "." in raw or "e" in raw or "E" in raw:
                return float(raw)
            return int(raw)
        except (ValueError, OverflowError):
            return raw
    return raw


def split_name(head: str) -> str:
    name = head.strip()
    if name.startswith(":"):  # ":name{" and ":call:name{" (a stray colon; vLLM accepts both)
        name = name[1:].lstrip()
    if name.startswith("call:"):
        name = name[5:].lstrip()
    return name.replace(T.STR, "").strip() if T.STR in name else name


_KEY, _COLON, _VALUE, _BARE, _AFTER = range(5)


class _Frame:
    __slots__ = ("bare", "box", "is_map", "key", "state")

    def __init__(self, box: dict[str, Any] | list[Any] | None, is_map: bool) -> None:
        self.box = box  # None: junk container, parsed but not kept
        self.is_map = is_map
        self.key: str | None = None
        self.state = _KEY if is_map else _VALUE
        self.bare: list[str] = []

    def put(self, value: Any) -> None:
        box = self.box
        if box is None:
            return
        if self.is_map:
            key = self.key if self.key is not None else ""
            if key in box:
                log.debug("duplicate argument key %r: the last value wins", key)
            box[key] = value  # type: ignore[call-overload]
        else:
            box.append(value)  # type: ignore[union-attr]

    def end_bare(self) -> None:
        if self.state == _BARE:
            raw = "".join(self.bare).strip()
            self.bare = []
            if raw:
                self.put(_Bare(raw))


# Punctuation of the argument syntax; any other token is a word.
_OPEN, _CLOSE, _COMMA, _COLON_TOK = 1, 2, 3, 4
_PUNCT = {"{": _OPEN, "(": _OPEN, "[": _OPEN, "}": _CLOSE, ")": _CLOSE, "]": _CLOSE}
_PUNCT.update({",": _COMMA, ":": _COLON_TOK})


def _parse_body(runs: Sequence[str]) -> tuple[str, dict[str, Any], bool]:
    """Parse ``NAME{...}`` split into runs (odd runs are string contents). Returns the name, the
    arguments (raw: bare scalars as _Bare) and whether the body closed."""
    head = runs[0]
    opener = OPENER_RE.search(head)
    if opener is None:
        return split_name(head), {}, False
    name = split_name(head[: opener.start()])
    args: dict[str, Any] = {}
    stack = [_Frame(args, True)]
    top = stack[0]
    last = len(runs) - 1 if len(runs) % 2 == 0 else -1  # an unterminated string at the end
    punct = _PUNCT.get
    for index, run in enumerate(runs):
        if index & 1:  # string contents
            if index == last:
                break  # truncated inside a string: the call is incomplete
            state = top.state
            if state == _KEY:
                top.key, top.state = run, _COLON
            elif state == _VALUE:
                top.put(run)
                top.state = _AFTER
            elif state == _BARE:
                top.bare.append(run)
            continue
        if index == 0:
            tokens = _TOKEN_RE.findall(run, opener.end())
        elif len(run) == 1:
            tokens = [run]  # one character is one token (often "}" or ","): no regex scan
        else:
            tokens = _TOKEN_RE.findall(run)
        for tok in tokens:
            state = top.state
            kind = punct(tok, 0)
            if kind == 0:  # a word
                if state == _BARE:
                    top.bare.append(tok)
                elif state == _KEY:
                    word = tok.strip()
                    if word:
                        top.key, top.state = word, _COLON
                elif state == _VALUE and not tok.isspace():
                    top.bare, top.state = [tok], _BARE
            elif kind == _COMMA:
                if state == _BARE:
                    top.end_bare()
                if top.is_map:
                    top.state, top.key = _KEY, None
                else:
                    top.state = _VALUE
            elif kind == _COLON_TOK:
                if state == _COLON:
                    top.state = _VALUE
                elif state == _BARE:
                    top.bare.append(":")
                elif state == _VALUE:
                    top.bare, top.state = [":"], _BARE
                elif state == _KEY:
                    top.key, top.state = "", _VALUE
            elif kind == _OPEN:
                keep = state in (_VALUE, _BARE, _COLON)
                if state == _BARE:
                    top.bare = []
                child_box: dict[str, Any] | list[Any] | None = None
                if keep and top.box is not None:
                    child_box = [] if tok == "[" else {}
                    top.put(child_box)
                top.state = _AFTER
                top = _Frame(child_box, tok != "[")
                stack.append(top)
            else:  # _CLOSE
                if state == _BARE:
                    top.end_bare()
                stack.pop()
                if not stack:
                    return name, args, True
                top = stack[-1]
    for frame in reversed(stack):
        frame.end_bare()
    return name, args, False


# ---------------------------------------------------------------------------------------------
# Schema coercion (the declared type wins)


def _to_number(text: str, integer: bool) -> Any:
    text = text.strip()
    try:
        if _INT_RE.fullmatch(text):
            return int(text)
        if not _LOOSE_NUMBER_RE.fullmatch(text):
            return None
        value = float(text)
        if integer:
            return int(value) if value.is_integer() else None
        return value
    except (ValueError, OverflowError):  # e.g. more digits than int() accepts, inf
        return None


def _coerce(value: Any, schema: Mapping[str, Any] | None, path: str, errors: list[str]) -> Any:
    if schema is None or not (type(schema) is dict or isinstance(schema, Mapping)):
        return _plain_value(value)
    kind = schema.get("type")
    if kind == "string" and type(value) is str:  # the common case
        return value
    alternatives = schema.get(ALTERNATIVES)
    if alternatives:
        return _coerce_union(value, alternatives, path, errors)
    if not isinstance(kind, str):
        kind = ""
    if isinstance(value, _Bare):
        raw = value.raw
        if raw == "null":
            return None
        if kind == "string":
            return raw
        if kind in ("integer", "number"):
            number = _to_number(raw, kind == "integer")
            if number is None:
                errors.append(f"{path}: expected {kind}, got {raw!r}")
                return _bare_default(raw)
            return number
        if kind == "boolean":
            if raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            errors.append(f"{path}: expected boolean, got {raw!r}")
            return _bare_default(raw)
        value = _bare_default(raw)
        if kind in ("array", "object") and value is not None:
            errors.append(f"{path}: expected {kind}, got {raw!r}")
        return value
    if isinstance(value, str):
        if kind in ("integer", "number"):
            number = _to_number(value, kind == "integer")
            if number is None:
                errors.append(f"{path}: expected {kind}, got the string {value!r}")
                return value
            return number
        if kind == "boolean":
            if value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            errors.append(f"{path}: expected boolean, got the string {value!r}")
        elif kind in ("array", "object"):
            errors.append(f"{path}: expected {kind}, got a string")
        return value
    if isinstance(value, dict):
        if kind not in ("object", ""):
            errors.append(f"{path}: expected {kind}, got an object")
            return _plain_value(value)
        return _coerce_object(value, schema, path, errors)
    if isinstance(value, list):
        if kind not in ("array", ""):
            errors.append(f"{path}: expected {kind}, got an array")
            return _plain_value(value)
        items = schema.get(FULL_ITEMS) or schema.get("items")
        items = items if type(items) is dict or isinstance(items, Mapping) else None
        return [_coerce(v, items, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


_FITS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _coerce_union(value: Any, alternatives: Any, path: str, errors: list[str]) -> Any:
    """A value of a union (``anyOf``) goes to the first alternative it fits as written: a bare
    ``5`` is an integer, ``<|"|>5<|"|>`` a string, a bare word a string. Only when none fits
    as written is it converted, by the first alternative that converts it without an error."""
    alts = [a for a in alternatives if type(a) is dict or isinstance(a, Mapping)]
    if not alts:
        return _plain_value(value)
    written = _bare_default(value.raw) if isinstance(value, _Bare) else value
    if written is None:
        return None  # null: the caller decides whether it is allowed
    kind_of = type(written)
    for alt in alts:
        fits = _FITS.get(alt.get("type"))  # type: ignore[arg-type]
        if fits is None or kind_of in fits:
            return _coerce(value, alt, path, errors)
    if kind_of is str or kind_of is int or kind_of is float or kind_of is bool:
        for alt in alts:
            trial: list[str] = []
            converted = _coerce(value, alt, path, trial)
            if not trial:
                return converted
    return _coerce(value, alts[0], path, errors)


def _coerce_object(
    value: dict[str, Any], schema: Mapping[str, Any], path: str, errors: list[str]
) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if type(props) is dict or isinstance(props, Mapping) else {}
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = props.get(key)
        where = f"{path}.{key}" if path else key
        if sub is not None and not (type(sub) is dict or isinstance(sub, Mapping)):
            sub = None
        coerced = _coerce(item, sub, where, errors)
        if coerced is None and sub is not None and not sub.get("nullable"):
            if key in required:
                errors.append(f"{where}: is required and cannot be null")
            else:
                continue  # null for an optional, non-nullable argument: treat as omitted
        out[key] = coerced
    return out


def _plain_value(value: Any) -> Any:
    """Bare scalars to their schema-less values (true/false/null, numbers, else text), in place and
    without recursion (nesting is unbounded)."""
    if isinstance(value, _Bare):
        return _bare_default(value.raw)
    stack = [value] if isinstance(value, dict | list) else []
    while stack:
        box = stack.pop()
        pairs = list(box.items()) if isinstance(box, dict) else list(enumerate(box))
        for key, item in pairs:
            if isinstance(item, _Bare):
                box[key] = _bare_default(item.raw)
            elif isinstance(item, dict | list):
                stack.append(item)
    return value


def tool_schemas(tools: Iterable[Any] | None) -> dict[str, dict[str, Any]] | None:
    """name -> normalized parameters schema, from declarations, bare functions or Tool objects."""
    if tools is None:
        return None
    schemas: dict[str, dict[str, Any]] = {}
    for tool in tools:
        decl = getattr(tool, "declaration", None)
        if callable(decl):
            tool = decl()
        if isinstance(tool, Mapping):
            fn = tool.get("function", tool)
            name, params = fn.get("name"), fn.get("parameters")
        else:
            name, params = getattr(tool, "name", None), getattr(tool, "parameters", None)
        if not isinstance(name, str):
            continue
        try:
            schemas[name] = normalize_schema(params)
        except Exception:  # a broken schema must not break parsing: parse without it
            log.warning("tool %r: unusable parameter schema; its arguments are not coerced", name)
            schemas[name] = {}
    return schemas


__all__ = ["OPENER_RE", "read_call", "split_name", "tool_schemas"]
