"""Tool declarations: JSON Schema normalized for the Gemma 4 declaration syntax.

The template serializes only a subset of JSON Schema (types, descriptions, string enums,
``items``, ``properties``, ``required``, ``nullable``) and silently drops the rest, so a pydantic
schema with ``$ref``/``anyOf``/constraints would reach the model stripped of its meaning.
:func:`normalize_schema` rewrites a schema into that subset first: references inlined, nullable
unions folded into ``nullable``, other unions reduced to one type with the alternatives spelled
out, constraints and defaults appended to the description (docs/format.md, 'Schema normalization').
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ..errors import ConfigError

_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
_MAX_REF_DEPTH = 8


def _fmt(x: Any) -> str:
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)


def _range(lo: Any, hi: Any, what: str) -> str | None:
    if lo is not None and hi is not None:
        return f"{what} {_fmt(lo)}–{_fmt(hi)}."
    if lo is not None:
        return f"{what} at least {_fmt(lo)}."
    if hi is not None:
        return f"{what} at most {_fmt(hi)}."
    return None


class _Normalizer:
    def __init__(self, root: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = {}
        for key in ("$defs", "definitions"):
            if isinstance(root.get(key), dict):
                self.defs.update({f"#/{key}/{k}": v for k, v in root[key].items()})

    def resolve(self, schema: Any, seen: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
        """Inline a $ref (siblings of $ref override the target's fields); cut recursion."""
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            target = self.defs.get(ref)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            if not isinstance(target, dict) or ref in seen or len(seen) >= _MAX_REF_DEPTH:
                name = ref.rsplit("/", 1)[-1]
                note = f"A {name} object (recursive or unresolved reference)."
                return {"type": "object", "description": _join(rest.get("description"), note)}, seen
            seen = (*seen, ref)
            schema = {**copy.deepcopy(target), **rest}
        return schema, seen

    def prop(self, schema: Any, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """Normalize one property schema."""
        if not isinstance(schema, dict):
            return {"type": "string"}
        schema, seen = self.resolve(schema, seen)
        notes: list[str] = []
        nullable = bool(schema.get("nullable"))

        # allOf: merge (pydantic wraps a $ref with a description in allOf).
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part, _ = self.resolve(part, seen)
                if isinstance(part, dict):
                    merged.update(part)
            merged.update({k: v for k, v in schema.items() if k != "allOf"})
            return self.prop(merged, seen)

        # anyOf/oneOf: drop null (-> nullable), keep one alternative, describe the others.
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list):
                rest = {k: v for k, v in schema.items() if k != key}
                alts = [self.resolve(o, seen)[0] for o in options]
                non_null = [
                    a for a in alts if not (isinstance(a, dict) and a.get("type") == "null")
                ]
                nullable = nullable or len(non_null) < len(alts)
                if not non_null:
                    return self.prop({**rest, "type": "string", "nullable": True}, seen)
                chosen = dict(non_null[0]) if isinstance(non_null[0], dict) else {}
                if len(non_null) > 1:
                    kinds = [_describe_type(a) for a in non_null]
                    notes.append("One of: " + ", ".join(kinds) + ".")
                merged = {**chosen, **rest}
                if nullable:
                    merged["nullable"] = True
                union = self.prop(merged, seen)
                if notes:
                    union["description"] = _join(union.get("description"), *notes)
                if len(non_null) > 1:
                    union[ALTERNATIVES] = [self.prop(a, seen) for a in non_null]
                return union

        kind = schema.get("type")
        alternatives = schema.get(ALTERNATIVES)  # an already normalized union keeps them
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            nullable = nullable or len(kinds) < len(kind)
            if len(kinds) > 1:
                notes.append("One of: " + ", ".join(str(k) for k in kinds) + ".")
                rest = {k: v for k, v in schema.items() if k not in ("type", "description")}
                alternatives = [{**rest, "type": k} for k in kinds]
            kind = kinds[0] if kinds else "string"
        if kind not in _TYPES:
            kind = _infer_type(schema)

        out: dict[str, Any] = {}
        desc = schema.get("description")
        if "const" in schema:
            if kind == "string" and isinstance(schema["const"], str):
                out["enum"] = [schema["const"]]
            else:
                notes.append(f"Always {_fmt(schema['const'])}.")
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            if kind == "string" and all(isinstance(e, str) for e in enum):
                out["enum"] = list(enum)
            else:
                notes.append("One of: " + ", ".join(_fmt(e) for e in enum) + ".")
        notes += _constraint_notes(schema)
        if kind == "array":
            items = schema.get(FULL_ITEMS, schema.get("items"))
            if isinstance(items, list):  # tuple form
                items = items[0] if items else None
            if isinstance(items, dict) and items:
                # Inside `items` every key is rendered (docs/format.md, 'Array items'): keep only
                # what the text says.
                item = self.prop(items, seen)
                out["items"] = {k: v for k, v in item.items() if k not in _UNRENDERED}
                if ALTERNATIVES in item or FULL_ITEMS in item:
                    out[FULL_ITEMS] = item  # for the parser (see ALTERNATIVES)
        if kind == "object":
            props = schema.get("properties")
            if isinstance(props, dict) and props:
                out["properties"] = {k: self.prop(v, seen) for k, v in props.items()}
                required = [r for r in schema.get("required", []) if r in props]
                if required:
                    out["required"] = required
            else:
                out["properties"] = {}
                extra = schema.get("additionalProperties")
                if isinstance(extra, dict) and extra:
                    values = self.prop(extra, seen)
                    notes.append(f"Free-form object; every value is {_describe_type(values)}.")
                elif extra is not False:
                    notes.append("Free-form object.")
        out["type"] = kind
        # Kept (the serializer drops them on properties) so that the tool-call
        # grammar can enforce what the description only tells the model.
        out.update({k: schema[k] for k in _GRAMMAR_KEYS if isinstance(schema.get(k), int | float)})
        if nullable:
            out["nullable"] = True
        if isinstance(alternatives, list) and len(alternatives) > 1:
            out[ALTERNATIVES] = [self.prop(a, seen) for a in alternatives]
        description = _join(desc, *notes)
        if description:
            out["description"] = description
        return {k: out[k] for k in sorted(out, key=_order)}

    def root(self, schema: dict[str, Any]) -> dict[str, Any]:
        body = self.prop({**schema, "type": "object"} if "type" not in schema else schema)
        if body.get("type") != "object":
            raise ConfigError(
                f"tool parameters must be a JSON Schema object, got type {schema.get('type')!r}: "
                "wrap the values in an object with named properties"
            )
        body.pop("nullable", None)
        return body


_GRAMMAR_KEYS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "maxLength",
    "minItems",
)
# For the output parser only, never rendered: a union's alternatives (each normalized), kept
# beside the one type the model is shown, so that a value stays in the first alternative it fits
# (for ``int | str``: ``5`` an integer, ``<|"|>5<|"|>`` a string); and an array's whole item
# schema where ``items`` had to lose such keys. The serializer drops unknown keys on
# properties; inside ``items`` it renders every key, so they are filtered out there.
ALTERNATIVES = "x-alternatives"
FULL_ITEMS = "x-items"
_UNRENDERED = frozenset((*_GRAMMAR_KEYS, ALTERNATIVES, FULL_ITEMS))
_ORDER = [
    "type",
    "description",
    "enum",
    "items",
    "properties",
    "required",
    "nullable",
    *_GRAMMAR_KEYS,
    ALTERNATIVES,
    FULL_ITEMS,
]


def _order(key: str) -> int:
    return _ORDER.index(key)


def _join(*parts: Any) -> str:
    texts = [str(p).strip() for p in parts if p]
    return " ".join(t for t in texts if t)


def _infer_type(schema: dict[str, Any]) -> str:
    if isinstance(schema.get("properties"), dict) or "additionalProperties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    enum = schema.get("enum") or ([schema["const"]] if "const" in schema else None)
    if enum:
        first = enum[0]
        if isinstance(first, bool):
            return "boolean"
        if isinstance(first, int):
            return "integer"
        if isinstance(first, float):
            return "number"
    return "string"


def _describe_type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any value"
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = "/".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_describe_type(schema['items'])}"
    if "enum" in schema:
        return "one of " + ", ".join(_fmt(e) for e in schema["enum"])
    return str(kind or schema.get("title") or "any value")


def _constraint_notes(schema: dict[str, Any]) -> list[str]:
    notes = []
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        notes.append(f"Greater than {_fmt(lo)}.")
        lo = None
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        notes.append(f"Less than {_fmt(hi)}.")
        hi = None
    for note in (
        _range(lo, hi, "Range"),
        _range(schema.get("minLength"), schema.get("maxLength"), "Length"),
        _range(schema.get("minItems"), schema.get("maxItems"), "Items"),
    ):
        if note:
            notes.append(note)
    if "multipleOf" in schema:
        notes.append(f"Multiple of {_fmt(schema['multipleOf'])}.")
    if schema.get("uniqueItems"):
        notes.append("Items must be unique.")
    if "pattern" in schema:
        notes.append(f"Pattern: {schema['pattern']}.")
    if "format" in schema:
        notes.append(f"Format: {schema['format']}.")
    if schema.get("default") is not None:
        notes.append(f"Default {_fmt(schema['default'])}.")
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        notes.append("Example: " + _fmt(schema["examples"][0]) + ".")
    return notes


def normalize_schema(parameters: Any) -> dict[str, Any]:
    """A tool's parameter schema rewritten into what the Gemma 4 serializer renders.

    Accepts a JSON Schema dict or a pydantic model class. The result always has
    ``type: "object"`` and ``properties``; ``$ref``/``$defs`` are inlined (recursion is cut and
    described), ``[X, "null"]``/``anyOf`` with null become ``nullable``, other unions keep their
    first alternative and list all of them in the description, constraints/defaults/formats and
    non-string enums are appended to the description, free-form objects get ``properties: {}``.
    """
    schema_of = getattr(parameters, "model_json_schema", None)
    if callable(schema_of):
        parameters = schema_of()
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ConfigError(
            f"tool parameters must be a JSON Schema dict (or a pydantic model), not {type(parameters).__name__}"
        )
    schema = copy.deepcopy(parameters)
    normalizer = _Normalizer(schema)
    for key in ("$defs", "definitions", "title", "$schema", "$id"):
        schema.pop(key, None)
    return normalizer.root(schema)


def tool_declaration(name: str, description: str, parameters: Any) -> dict[str, Any]:
    """An OpenAI-style tool declaration with the schema normalized for Gemma 4.

    ``{"type": "function", "function": {"name", "description", "parameters"}}``; pass it in the
    ``tools`` list of :func:`render_chat` (or return it from ``Tool.declaration()``).
    """
    if not isinstance(name, str) or not name or any(c in name for c in "{}(),:<> \n\t"):
        raise ConfigError(
            f"invalid tool name {name!r}: use letters, digits, '_', '-' or '.' (it is written bare "
            "into the prompt and parsed back from the model's calls)"
        )
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description or "",
            "parameters": normalize_schema(parameters),
        },
    }
