"""What the TUI needs from an agent, and its implementation over `gemma_agent.Agent`.

The app talks only to `Backend`; `AgentBackend` adapts the SDK's Agent (stream, compaction,
sessions). Tests drive the app through the same class with a ScriptedEngine.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..agent import (
    AgentType,
    Checkpoint,
    Engine,
    EngineInfo,
    Message,
    ProjectContext,
    RewindResult,
    SubagentRun,
    TaskTool,
)
from ..errors import ConfigError
from ..events import Event, HistoryCompacted, RunStarted, ToolCallStarted
from .format import FileBefore, call_path, read_text_file
from .screens import SessionEntry

FILE_WRITERS = ("write_file", "edit_file")  # their cards show a diff

if TYPE_CHECKING:
    from ..agent import Agent
    from ..tools import MCPConfig, MCPServers, MCPStatus, ProcessInfo


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
    def max_steps(self) -> int: ...

    @property
    def engine_info(self) -> EngineInfo | None:
        """The engine's model, variant, context length, input kinds (None: not started)."""
        ...

    @property
    def compacts(self) -> bool:
        """Whether a history too long for the context is compacted (else the run stops)."""
        ...

    def use_engine(self, engine: Engine) -> Engine | None:
        """Continue the session on another engine from the next run (the history is kept);
        returns the previous engine, for the caller to close. Not during a run."""
        ...

    async def close_engine(self) -> None:
        """Stop the current engine (its process and memory) before another is started; the
        session needs `use_engine` before its next run."""
        ...

    async def context_usage(self) -> tuple[int, int]:
        """(tokens, usable limit) of the current session on the current engine; tokens is 0
        before the first task."""
        ...

    def stream(
        self, task: str | list[Any], *, mode: str = "default",
        allowed_tools: Sequence[str] | None = None,
    ) -> AsyncIterator[Event]:  # fmt: skip
        """Run a task (text, or text + media) in the current session; RunStarted sets
        ``session_id``. ``mode``: "plan" (read-only tools and update_plan only) or "default";
        ``allowed_tools``: the only tools this run may call (a custom command's)."""
        ...

    def new_session(self) -> None: ...

    def resume(self, session_id: str) -> list[Message]:
        """Make a saved session current and return its history (ConfigError if unknown)."""
        ...

    async def compact(self, focus: str | None) -> HistoryCompacted | None: ...

    async def undo_compaction(self) -> bool: ...

    async def checkpoints(self) -> list[Checkpoint]:
        """The current session's rewind points, with what changed since each."""
        ...

    async def rewind(
        self, to: int, *, code: bool = True, conversation: bool = True, force: bool = False,
        dry_run: bool = False,
    ) -> RewindResult: ...  # fmt: skip

    async def undo_rewind(self) -> None: ...

    def set_thinking(self, on: bool, budget: int | None) -> None: ...

    def set_approval(self, mode: str) -> None: ...

    def tool_list(self) -> list[tuple[str, str]]: ...

    def project_context(self) -> ProjectContext:
        """The AGENTS.md memory and skills, read again from disk."""
        ...

    def sessions(self) -> list[SessionEntry]: ...

    def subagent_runs(self, session_id: str) -> list[SubagentRun]:
        """The sub-agents a saved session ran, with their transcripts (a resumed task card
        shows them); [] when none, or when the log cannot be read."""
        ...

    def agent_types(self) -> tuple[list[AgentType], list[str]] | None:
        """The agent types the task tool can start, read again from the agent files, and why
        malformed files were left out; None when the agent has no task tool."""
        ...

    def session_file(self) -> str | None: ...

    def session_model(self) -> tuple[str, str | None] | None:
        """The model (and variant) the current session last ran on, as saved (None: unknown)."""
        ...

    def describe(self) -> str: ...

    def file_before(self, call_id: str) -> FileBefore | None:
        """The file a write_file/edit_file call changes, as read before the call ran."""
        ...

    async def aclose(self) -> None: ...

    def take_notices(self) -> list[str]:
        """Start-up messages to show once (MCP servers that did not start, untrusted ones)."""
        ...

    def mcp_status(self) -> list[MCPStatus]:
        """The configured MCP servers: state, why one failed, its tools."""
        ...

    async def trust_mcp(self) -> tuple[list[str], list[str]]:
        """Trust the project's MCP servers (remembered) and start them, their tools the agent's
        from the next request: ``(names newly trusted, notices of servers that did not start)``.
        """
        ...

    def processes(self) -> list[ProcessInfo]:
        """run_shell's background processes (running and ended) of this session."""
        ...

    def hook_trust_request(self) -> list[str]:
        """The commands of the project's hook set when the user has not answered it yet
        (trusted or declined this exact set); [] otherwise."""
        ...

    def answer_hook_trust(self, trust: bool) -> None:
        """Remember the answer for the project's hook set; trusted, its hooks run from now on."""
        ...


class AgentBackend:
    """`Backend` over a `gemma_agent.Agent` (its engine already built or built on first use)."""

    def __init__(
        self,
        agent: Agent,
        *,
        thinking_budget: int | None = None,
        mcp: MCPServers | None = None,
        mcp_config: MCPConfig | None = None,
        notices: Sequence[str] = (),
        hook_trust: Any = None,
    ) -> None:
        self.agent = agent
        self.hook_trust = hook_trust  # agent.hooks.HookTrust: a project hook set to ask about
        self.mcp = mcp  # closed with the backend
        self.mcp_config = mcp_config
        self._notices = list(notices)
        info = agent.engine_info
        self.model = info.model if info is not None else (agent.model_name or "?")
        self.variant = info.variant if info is not None else ""
        self.thinking_budget = thinking_budget
        self.session_id: str | None = None
        self._before: dict[str, FileBefore] = {}  # call id -> file read before the call ran

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

    @property
    def engine_info(self) -> EngineInfo | None:
        return self.agent.engine_info

    @property
    def compacts(self) -> bool:
        return self.agent.compactor is not None

    def use_engine(self, engine: Engine) -> Engine | None:
        # The TUI built the new engine: the agent owns it (closed with the app).
        previous = self.agent.use_engine(engine, close_engine=True)
        self.model, self.variant = engine.info.model, engine.info.variant
        return previous

    async def close_engine(self) -> None:
        if self.agent.engine_info is not None:  # built: engine() returns it, builds nothing
            engine = await self.agent.engine()
            await engine.aclose()

    async def context_usage(self) -> tuple[int, int]:
        if self.session_id is not None:
            await self._ensure_open()
            return await self.agent.context_usage(self.session_id)
        info = self.agent.engine_info
        length = info.max_model_len if info is not None else 0
        return 0, max(length - self.agent.max_output_tokens, 0)

    async def stream(
        self, task: str | list[Any], *, mode: str = "default",
        allowed_tools: Sequence[str] | None = None,
    ) -> AsyncIterator[Event]:  # fmt: skip
        self._before.clear()
        stream = self.agent.stream(
            task,
            session_id=self.session_id,
            on_emit=self._on_emit,
            answers_approvals=True,
            mode=mode,  # type: ignore[arg-type]
            allowed_tools=allowed_tools,
        )  # the app answers each ApprovalRequested (modal)
        async with contextlib.aclosing(stream) as s:  # type: ignore[type-var]
            async for event in s:
                if isinstance(event, RunStarted):
                    self.session_id = event.session_id
                yield event

    def _on_emit(self, event: Event) -> None:
        """Runs when the agent emits an event, before it goes on: a ToolCallStarted precedes the
        call, so the file read here is the one the call will change."""
        if isinstance(event, ToolCallStarted) and event.call.name in FILE_WRITERS:
            path = call_path(event.call.arguments)
            if path is not None:
                text = read_text_file(self.agent.workspace, path)
                self._before[event.call.id] = FileBefore(path, text)

    def file_before(self, call_id: str) -> FileBefore | None:
        return self._before.pop(call_id, None)

    def new_session(self) -> None:
        self.session_id = None

    def resume(self, session_id: str) -> list[Message]:
        # Validates the id and reads the log (or takes the session the agent holds).
        history = self.agent.open_session(session_id)
        self.session_id = self.agent.session_id
        return history

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

    async def checkpoints(self) -> list[Checkpoint]:
        if self.session_id is None:
            return []
        return await self.agent.checkpoints(self.session_id)

    async def rewind(
        self, to: int, *, code: bool = True, conversation: bool = True, force: bool = False,
        dry_run: bool = False,
    ) -> RewindResult:  # fmt: skip
        if self.session_id is None:
            raise ConfigError("Nothing to rewind yet: the session starts with the first task.")
        return await self.agent.rewind(
            self.session_id, to=to, code=code, conversation=conversation, force=force,
            dry_run=dry_run,
        )  # fmt: skip

    async def undo_rewind(self) -> None:
        if self.session_id is None:
            raise ConfigError("Nothing to undo yet.")
        await self.agent.undo_rewind(self.session_id, force=True)  # the TUI showed the diff

    async def _ensure_open(self) -> None:
        """A resumed session is loaded by the agent on its next run; load it for commands too."""
        if self.session_id is not None:
            self.agent.open_session(self.session_id)  # no-op when the agent holds it

    def set_thinking(self, on: bool, budget: int | None) -> None:
        self.agent.set_thinking(on, budget)
        self.thinking_budget = budget

    def set_approval(self, mode: str) -> None:
        policy = self.agent.policy
        if policy is None:
            from ..tools import ApprovalPolicy

            self.agent.policy = ApprovalPolicy.for_project(self.agent.workspace, mode)  # type: ignore[arg-type]
        else:
            policy.mode = mode

    def project_context(self) -> ProjectContext:
        return self.agent.reload_context()

    def tool_list(self) -> list[tuple[str, str]]:
        registry = self.agent.registry
        out = []
        for name in registry.names():
            tool = registry.get(name)
            out.append((name, getattr(tool, "description", "") or ""))
        return out

    def sessions(self) -> list[SessionEntry]:
        return [
            SessionEntry(s.session_id, s.title, _when(s.modified))
            for s in self.agent.session_summaries(limit=50)
        ]

    def subagent_runs(self, session_id: str) -> list[SubagentRun]:
        try:
            return self.agent.subagent_runs(session_id)
        except (ConfigError, OSError):
            return []  # the parent's transcript still shows; its cards just lack the children

    def agent_types(self) -> tuple[list[AgentType], list[str]] | None:
        task = self.agent.registry.get(TaskTool.name)
        if not isinstance(task, TaskTool):
            return None
        context = self.agent.reload_context()
        # Types given in code are not in the context (only agent files are discovered).
        types = list(context.agent_types) or list(task.types.values())
        problems = list(context.agent_problems)
        return types, problems

    def session_file(self) -> str | None:
        if self.session_id is None:
            return None
        return str(self.agent.session_file(self.session_id))

    def session_model(self) -> tuple[str, str | None] | None:
        if self.session_id is None:
            return None
        return self.agent.session_model(self.session_id)

    def describe(self) -> str:
        info = self.agent.engine_info
        if info is None:
            return f"model {self.model} (engine not started)"
        inputs = ", ".join(sorted(info.modalities))
        return (
            f"model {info.model} · variant {info.variant} · context {info.max_model_len} tokens · "
            f"inputs: {inputs}" + (" · constrained tool calls" if info.supports_grammar else "")
        )

    async def aclose(self) -> None:
        try:
            await self.agent.aclose()
        finally:
            if self.mcp is not None:
                await self.mcp.aclose()

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def mcp_status(self) -> list[MCPStatus]:
        return self.mcp.status() if self.mcp is not None else []

    async def trust_mcp(self) -> tuple[list[str], list[str]]:
        if self.mcp_config is None:
            return [], []
        newly = self.mcp_config.trust()
        servers = [c.server(self.mcp_config.workspace) for c in newly if c.enabled]
        if self.mcp is None:
            from ..tools import MCPServers

            self.mcp = MCPServers([])
        notices = await self.mcp.add(servers)
        try:
            self.agent.add_tools(t for s in servers if s.state == "running" for t in s.tools())
        except ConfigError as e:
            notices.append(f"The trusted servers' tools were not added: {e}")
        return [c.name for c in newly], notices

    def hook_trust_request(self) -> list[str]:
        return list(self.hook_trust.commands()) if self.hook_trust is not None else []

    def answer_hook_trust(self, trust: bool) -> None:
        if self.hook_trust is not None:
            request, self.hook_trust = self.hook_trust, None
            request.answer(trust)

    def processes(self) -> list[ProcessInfo]:
        found: list[ProcessInfo] = []
        groups: set[int] = set()  # run_shell, shell_output and shell_kill share one group
        for tool in self.agent.registry:
            group = getattr(tool, "processes", None)
            if group is not None and hasattr(group, "list") and id(group) not in groups:
                groups.add(id(group))
                found += group.list()
        return found


def _when(modified: float | None) -> str:
    if modified is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(modified))
