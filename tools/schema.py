"""JSON Schema helpers: model-readable argument errors and a small validator.

Tools built from functions or pydantic models are validated by pydantic. Tools that only have a
JSON Schema (MCP servers, hand-written ``Tool(parameters=...)``) are checked by ``validate_schema``,
which covers what tool schemas use in practice: type, properties, required,
additionalProperties, items, enum, const, anyOf/oneOf/allOf, numeric and length bounds, $ref.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

Problem = tuple[tuple[Any, ...], str, str, Any]  # (location, error type, message, given value)

_MAX_PROBLEMS = 6


def short_repr(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(schema: dict[str, Any], root: dict[str, Any]) -> str:
    schema = _deref(schema, root)
    if "enum" in schema:
        return "one of " + ", ".join(short_repr(v, 30) for v in schema["enum"][:12])
    if "const" in schema:
        return f"exactly {short_repr(schema['const'], 30)}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            names = [_type_name(s, root) for s in schema[key]]
            return " or ".join(dict.fromkeys(n for n in names if n != "null")) + (
                " (or null)" if "null" in names else ""
            )
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {_type_name(items, root)}" if isinstance(items, dict) else "array"
    if kind == "object" or "properties" in schema:
        return "object"
    return str(kind) if kind else "any value"


def describe_arguments(schema: dict[str, Any]) -> str:
    """One line listing the expected arguments, e.g. ``path (string, required), limit (integer)``."""
    props: dict[str, Any] = schema.get("properties") or {}
    if not props:
        return "This tool takes no arguments."
    required = set(schema.get("required") or [])
    parts = []
    for name, prop in props.items():
        bits = [_type_name(prop, schema)]
        if name in required:
            bits.append("required")
        elif isinstance(prop, dict) and "default" in prop:
            bits.append(f"default {short_repr(prop['default'], 20)}")
        parts.append(f"{name} ({', '.join(bits)})")
    return "Expected arguments: " + "; ".join(parts) + "."


def format_errors(tool_name: str, problems: Sequence[Problem], schema: dict[str, Any]) -> str:
    """A concise error for the model: which field, what was expected, what was given."""
    allowed = ", ".join((schema.get("properties") or {}).keys()) or "none"
    lines = [f"Invalid arguments for {tool_name}; the call was not made."]
    for loc, kind, message, given in list(problems)[:_MAX_PROBLEMS]:
        where = ".".join(str(p) for p in loc) or "(arguments)"
        if kind == "missing":
            lines.append(f"- {where}: required but missing")
        elif kind == "extra_forbidden":
            known = f" (allowed: {allowed})" if len(loc) == 1 else ""
            lines.append(f"- {where}: unknown argument{known}")
        else:
            lines.append(f"- {where}: {message}; got {short_repr(given)}")
    if len(problems) > _MAX_PROBLEMS:
        lines.append(f"- ... and {len(problems) - _MAX_PROBLEMS} more problems")
    lines.append(describe_arguments(schema))
    return "\n".join(lines)


# --- validator ---------------------------------------------------------------------------------


def _deref(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            node = (
                node.get(part.replace("~1", "/").replace("~0", "~"), {})
                if isinstance(node, dict)
                else {}
            )
        schema = node
        seen += 1
    return schema if isinstance(schema, dict) else {}


_JSON_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def validate_schema(schema: dict[str, Any], value: Any) -> list[Problem]:
    problems: list[Problem] = []
    _check(schema, value, (), schema, problems)
    return problems


def _check(
    schema: Any, value: Any, loc: tuple[Any, ...], root: dict[str, Any], out: list[Problem]
) -> None:
    if schema is True or schema is None:
        return
    if schema is False:
        out.append((loc, "not_allowed", "no value is allowed here", value))
        return
    schema = _deref(schema, root)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if schema.get("nullable") and "null" not in kinds:
            kinds = [*kinds, "null"]
        if not any(_JSON_TYPES.get(k, lambda v: True)(value) for k in kinds):
            out.append((loc, "type", f"expected {' or '.join(map(str, kinds))}", value))
            return
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(short_repr(v, 30) for v in schema["enum"][:12])
        out.append((loc, "enum", f"expected one of {options}", value))
    if "const" in schema and value != schema["const"]:
        out.append((loc, "const", f"expected {short_repr(schema['const'])}", value))
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if (
            isinstance(options, list)
            and options
            and all(validate_schema_at(o, value, root) for o in options)
        ):
            names = " or ".join(_type_name(o, root) for o in options)
            out.append((loc, key, f"expected {names}", value))
    for sub in schema.get("allOf") or []:
        _check(sub, value, loc, root, out)
    if isinstance(value, dict):
        _check_object(schema, value, loc, root, out)
    elif isinstance(value, list | tuple):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _check(items, item, (*loc, i), root, out)
        _bounds(value, len(value), schema, "minItems", "maxItems", "items", loc, out)
    elif isinstance(value, str):
        _bounds(value, len(value), schema, "minLength", "maxLength", "characters", loc, out)
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if not re.search(pattern, value):
                    out.append((loc, "pattern", f"must match the pattern {pattern!r}", value))
            except re.error:
                pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        for key, ok, word in (
            ("minimum", lambda v, b: v >= b, "at least"),
            ("maximum", lambda v, b: v <= b, "at most"),
            ("exclusiveMinimum", lambda v, b: v > b, "greater than"),
            ("exclusiveMaximum", lambda v, b: v < b, "less than"),
        ):
            bound = schema.get(key)
            if (
                isinstance(bound, int | float)
                and not isinstance(bound, bool)
                and not ok(value, bound)
            ):
                out.append((loc, key, f"must be {word} {bound}", value))


def validate_schema_at(schema: Any, value: Any, root: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    _check(schema, value, (), root, problems)
    return problems


def _check_object(
    schema: dict[str, Any],
    value: dict[str, Any],
    loc: tuple[Any, ...],
    root: dict[str, Any],
    out: list[Problem],
) -> None:
    props: dict[str, Any] = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in value:
            out.append(((*loc, name), "missing", "required", None))
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _check(props[name], item, (*loc, name), root, out)
        elif extra is False:
            out.append(((*loc, name), "extra_forbidden", "unknown argument", item))
        elif isinstance(extra, dict):
            _check(extra, item, (*loc, name), root, out)


def _bounds(
    value: Any,
    size: int,
    schema: dict[str, Any],
    low_key: str,
    high_key: str,
    unit: str,
    loc: tuple[Any, ...],
    out: list[Problem],
) -> None:
    low, high = schema.get(low_key), schema.get(high_key)
    if isinstance(low, int) and size < low:
        out.append((loc, low_key, f"must have at least {low} {unit}", value))
    if isinstance(high, int) and size > high:
        out.append((loc, high_key, f"must have at most {high} {unit}", value))


__all__ = ["describe_arguments", "format_errors", "short_repr", "validate_schema"]
