"""Helpers for agent tests: Gemma 4 call syntax for scripted outputs."""

from __future__ import annotations

from typing import Any

S = '<|"|>'


def value(v: Any) -> str:
    """The Gemma 4 value codec (enough for tests: str, bool, None, numbers, lists, dicts)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return f"{S}{v}{S}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{value(v[k])}" for k in sorted(v, key=str.lower)) + "}"
    raise TypeError(type(v))


def call(name: str, **arguments: Any) -> str:
    """One complete tool call, canonical (as the template would render it)."""
    return f"<|tool_call>call:{name}{value(arguments)}<tool_call|>"


def thought(text: str) -> str:
    return f"<|channel>thought\n{text}<channel|>"


def kinds(events: list[Any]) -> list[str]:
    """Event kinds with consecutive deltas of one kind collapsed."""
    out: list[str] = []
    for e in events:
        if e.kind.endswith("_delta") and out and out[-1] == e.kind:
            continue
        out.append(e.kind)
    return out
