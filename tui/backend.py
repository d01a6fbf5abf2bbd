"""What the TUI needs from an agent, and its implementation over `gemma_agent.Agent`.

The app talks only to `Backend`; `AgentBackend` adapts the SDK's Agent (stream, compaction,
sessions). Tests drive the app through the same class with a ScriptedEngine.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..agent.events import Event, HistoryCompacted, RunStarted
from ..agent.messages import Message
from ..agent.session import load_session, session_path
from ..errors import ConfigError
from .screens import SessionEntry

if TYPE_CHECKING:
    from ..agent.agent import Agent


class Backend(Protocol):
    model: str
    variant: str
    thinking_budget: int | None
    session_id: str | None

    @property
    def thinking(self) -> bool: ...

    @property
    def approval(self) -> str: ...

    @property
    def max_steps(self) -> int:
        ...
        # the conversation the next task continues (None: a new one)

    def stream(self, task: str | list[Any]) -> AsyncIterator[Event]:
        """Run a task (text, or text + media) in the current session; RunStarted sets
        ``session_id``."""
        ...

    def new_session(self) -> None: ...

    def resume(self, session_id: str) -> list[Message]:
        """Make a saved session current and return its history (ConfigError if unknown)."""
        ...

    async def compact(self, focus: str | None) -> HistoryCompacted | None: ...

    async def undo_compaction(self) -> bool: ...

    def set_thinking(self, on: bool, budget: int | None) -> None: ...

    def set_approval(self, mode: str) -> None: ...

    def tool_list(self) -> list[tuple[str, str]]: ...

    def sessions(self) -> list[SessionEntry]: ...

    def session_file(self) -> str | None: ...

    def describe(self) -> str: ...

    async def aclose(self) -> None: ...


class AgentBackend:
    """`Backend` over a `gemma_agent.Agent` (its engine already built or built on first use)."""

    def __init__(self, agent: Agent, *, thinking_budget: int | None = None) -> None:
        self.agent = agent
        engine = agent._engine
        info = getattr(engine, "info", None)
        self.model = info.model if info is not None else (agent.model_name or "?")
        self.variant = info.variant if info is not None else ""
        self.thinking_budget = thinking_budget
        self.session_id: str | None = None

    @property
    def thinking(self) -> bool:
        return self.agent.thinking

    @property
    def approval(self) -> str:
        policy = self.agent.policy
        return str(getattr(policy, "mode", "yolo" if policy is None else "ask"))

    @property
    def max_steps(self) -> int:
        return self.agent.limits.max_steps

    async def stream(self, task: str | list[Any]) -> AsyncIterator[Event]:
        stream = self.agent.stream(task, session_id=self.session_id)
        async with contextlib.aclosing(stream) as s:  # type: ignore[type-var]
            async for event in s:
                if isinstance(event, RunStarted):
                    self.session_id = event.session_id
                yield event

    def new_session(self) -> None:
        self.session_id = None

    def resume(self, session_id: str) -> list[Message]:
        # Validates the id and reads the log now; the agent reopens it on the next task.
        state = load_session(session_path(self.agent.sessions_dir, session_id))
        self.session_id = state.session_id
        known = self.agent._conversations.get(state.session_id)
        return list(known.history) if known is not None else state.history

    async def compact(self, focus: str | None) -> HistoryCompacted | None:
        if self.session_id is None:
            raise ConfigError("Nothing to compact yet: the session starts with the first task.")
        await self._ensure_open()
        return await self.agent.compact(focus, session_id=self.session_id)

    async def undo_compaction(self) -> bool:
        if self.session_id is None:
            return False
        await self._ensure_open()
        before = self.agent.history(self.session_id)
        try:
            self.agent.undo_compaction(session_id=self.session_id)
        except (ConfigError, IndexError, LookupError):
            return False
        return self.agent.history(self.session_id) != before

    async def _ensure_open(self) -> None:
        """A resumed session is loaded by the agent on its next run; load it for commands too."""
        if self.session_id is not None and self.session_id not in self.agent._conversations:
            self.agent._open(self.session_id, [])

    def set_thinking(self, on: bool, budget: int | None) -> None:
        from ..agent.limits import ThinkingBudget

        self.agent.thinking = on
        self.agent.thinking_budget = ThinkingBudget.of(budget)
        self.thinking_budget = budget
        # The prompt is rendered with thinking on/off: the next request re-renders the history.
        for conv in self.agent._conversations.values():
            if conv.model is not None:
                conv.model.thinking = on
                conv.model.invalidate()

    def set_approval(self, mode: str) -> None:
        policy = self.agent.policy
        if policy is None:
            from ..tools import ApprovalPolicy

            self.agent.policy = ApprovalPolicy.for_project(self.agent.workspace, mode)  # type: ignore[arg-type]
        else:
            policy.mode = mode

    def tool_list(self) -> list[tuple[str, str]]:
        registry = self.agent.registry
        out = []
        for name in registry.names():
            tool = registry.get(name)
            out.append((name, getattr(tool, "description", "") or ""))
        return out

    def sessions(self) -> list[SessionEntry]:
        out = []
        for sid in self.agent.sessions()[:50]:
            path = session_path(self.agent.sessions_dir, sid)
            out.append(SessionEntry(sid, _session_title(path), _when(path)))
        return out

    def session_file(self) -> str | None:
        if self.session_id is None:
            return None
        return str(session_path(self.agent.sessions_dir, self.session_id))

    def describe(self) -> str:
        engine = self.agent._engine
        info = getattr(engine, "info", None)
        if info is None:
            return f"model {self.model} (engine not started)"
        return (
            f"model {info.model} · variant {info.variant} · context {info.max_model_len} tokens · "
            f"engine {type(engine).__name__}"
            + (" · constrained tool calls" if info.supports_grammar else "")
        )

    async def aclose(self) -> None:
        await self.agent.aclose()


def _session_title(path: Path) -> str:
    """The first user message of a session log, on one line (reads only the first lines)."""
    try:
        with open(path, encoding="utf-8") as f:
            for _, line in zip(range(50), f, strict=False):
                record = json.loads(line)
                message = record.get("message") if isinstance(record, dict) else None
                if isinstance(message, dict) and message.get("role") == "user":
                    text = " ".join(str(message.get("content", "")).split())
                    return text[:80]
    except (OSError, ValueError):
        pass
    return ""


def _when(path: Path) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    except OSError:
        return ""
