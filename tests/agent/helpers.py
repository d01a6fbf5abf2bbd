"""Helpers for agent tests: Gemma 4 call syntax (shipped with ScriptedEngine), event kinds."""

from __future__ import annotations

from typing import Any

from gemma_agent.agent.engines.scripted import thought, tool_call

call = tool_call

__all__ = ["call", "kinds", "thought"]


def kinds(events: list[Any]) -> list[str]:
    """Event kinds with consecutive deltas of one kind collapsed."""
    out: list[str] = []
    for e in events:
        if e.kind.endswith("_delta") and out and out[-1] == e.kind:
            continue
        out.append(e.kind)
    return out
