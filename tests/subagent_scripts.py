"""Scripting a parent and its sub-agents on one ScriptedEngine (tests of every face)."""

from __future__ import annotations

import re
from typing import Any

from gemma_agent import ScriptedEngine


class Router:
    """Answers each request from the script of the agent that sent it: a child's, named by the
    ``TASK-x`` tag of its task (its first user message), else the parent's. Records who asked,
    in order. Children run concurrently, so one script per agent keeps each deterministic."""

    def __init__(self, scripts: dict[str, list[str]]) -> None:
        self.scripts = scripts
        self.asked: list[str] = []

    def __call__(self, request: Any) -> str:
        first = request.prompt_text.split("<|turn>user\n", 1)[1].split("<turn|>", 1)[0]
        found = re.search(r"TASK-(\w+)", first)
        key = found.group(1) if found else "parent"
        self.asked.append(key)
        return self.scripts[key].pop(0)

    def engine(self, **kw: Any) -> ScriptedEngine:
        return ScriptedEngine([self] * sum(len(s) for s in self.scripts.values()), **kw)


def task(prompt: str, kind: str = "explore", what: str = "look around") -> str:
    """The model's call of the task tool (put a TASK-x tag in ``prompt`` to route the child)."""
    return ScriptedEngine.tool_call("task", agent_type=kind, description=what, prompt=prompt)
