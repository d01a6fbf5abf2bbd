"""`gemma-agent acp`: the agent behind the Agent Client Protocol (Zed, JetBrains, Neovim, Toad).

One `Agent` per ACP session, built by an agent factory for the session's folder (the CLI's
shares one engine between them). A prompt runs ``agent.stream(..., answers_approvals=True)``
and every event becomes a ``session/update``; a call the approval policy asks about becomes a
``session/request_permission`` (allow once / always / reject); ``session/cancel`` cancels the
task that drives the stream (the partial turn is kept in the session, as anywhere else).
Sessions are ours: ``session/load`` reopens a saved one and replays it as updates (its
sub-agents' tool calls inside their task calls). A session made by ``session/new`` is written
with its first prompt: one that never gets a prompt leaves no log (editors open sessions freely).

What the editor offers is used: its file system for the file tools (editor_fs.py), its
terminals for ``run_shell`` (editor_terminal.py, the sandbox kept), the MCP servers it passes
with a session beside those configured for gemma-agent (editor_mcp.py, started and stopped with
it). ``session/list`` lists the saved sessions of a folder; the ``model`` config option switches
the engine every session shares (``Models``: the CLI's ``editors.app.Engines``); ``thinking`` is
per session.

Sub-agents: a child's tool calls are tool calls of the session, titled with the child's short
path (``explore#1 › Read src/x.py``); its thinking, text and plan are its own (its report is
its task call's result), its warnings are thought chunks naming it; its approval requests are
``session/request_permission`` with that title.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from acp import PROTOCOL_VERSION, RequestError, run_agent, update_tool_call
from acp.interfaces import Client
from acp.schema import (
    AgentCapabilities,
    AllowedOutcome,
    AudioContentBlock,
    ClientCapabilities,
    ConfigOptionUpdate,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PermissionOption,
    PromptCapabilities,
    PromptResponse,
    ResourceContentBlock,
    SessionCapabilities,
    SessionConfigOptionBoolean,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionInfo,
    SessionInfoUpdate,
    SessionListCapabilities,
    SessionMode,
    SessionModeState,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
    TextContentBlock,
    TextResourceContents,
    ToolCallUpdate,
)

from .. import Agent, Audio, Image, __version__
from ..agent import Engine
from ..errors import AgentError
from ..events import (
    ApprovalDecision,
    ApprovalRequested,
    Event,
    HistoryCompacted,
    Notice,
    PlanUpdated,
    RunFinished,
    RunStarted,
    SubagentEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
    agent_label,
)
from ..tools import MCPServers, Tool
from . import acp_updates as updates
from . import editor_mcp
from .acp_updates import FINAL_ANSWER
from .editor_fs import EditorFiles
from .editor_terminal import EditorTerminals

log = logging.getLogger(__name__)

ToolsHook = Callable[[Sequence[Tool]], list[Tool]]
AgentFactory = Callable[[Path, ToolsHook], "Agent | Awaitable[Agent]"]
"""Builds the agent of a new or loaded session: ``factory(folder, wrap_tools)`` with the
session's folder (its ``cwd``) and a hook the agent's tools go through, which swaps in the
editor's file system for the file tools when the client offers it (else returns them as they
are). It may be async."""


class Models(Protocol):
    """The model picker (the CLI's `Engines`): the engine every session shares, switched."""

    def current(self) -> str | None: ...
    def choices(self) -> list[tuple[str, str]]: ...
    async def get(self) -> Engine: ...
    async def switch(self, model: str) -> Engine: ...


MODES = {
    "ask": "Ask before writes and shell commands",
    "auto": "Run everything but dangerous-looking shell commands",
    "read-only": "Read-only tools only",
    "yolo": "Run everything without asking",
    "plan": "Plan only: read-only tools and update_plan",
}
# The stop reasons of a run in ACP's words; the others end the turn with a line saying why.
STOP_REASONS = {
    "final_answer": "end_turn",
    "max_steps": "max_turn_requests",
    "token_budget": "max_tokens",
    "context_overflow": "max_tokens",
    "cancelled": "cancelled",
}
LIST_PAGE = 100  # sessions per session/list page
PERMISSIONS: list[tuple[str, str, Any, ApprovalDecision]] = [
    ("allow", "Allow once", "allow_once", "allow"),
    ("allow_always", "Always allow", "allow_always", "allow_always"),
    ("deny", "Reject", "reject_once", "deny"),
]


@dataclass
class _Session:
    id: str
    agent: Agent
    workspace: Path
    mode: str
    task: asyncio.Task[PromptResponse] | None = None
    cancelled: bool = False
    files: EditorFiles | None = None
    terminals: EditorTerminals | None = None
    mcp: MCPServers | None = None  # the servers the editor passed for this session
    notices: list[str] = field(default_factory=list)  # said with the next prompt
    answered: bool = False  # the running prompt's answer has been sent (as text)
    titled: bool = False  # its title has been sent (session_info_update)


class GemmaACPAgent:
    """The ACP ``Agent`` side (``acp.interfaces.Agent``) over gemma-agent's SDK."""

    def __init__(
        self, agent_factory: AgentFactory, models: Models | None = None, *, trust_mcp: bool = False
    ) -> None:
        self._factory = agent_factory
        self._models = models
        self._trust_mcp = trust_mcp  # `--trust-mcp`: start the project's configured servers
        self._switching = asyncio.Lock()  # a model switch under way: prompts wait
        self._conn: Client | None = None
        self._client_caps = ClientCapabilities()
        self._sessions: dict[str, _Session] = {}

    def on_connect(self, conn: Client) -> None:
        self._conn = conn

    @property
    def client(self) -> Client:
        assert self._conn is not None, "not connected"
        return self._conn

    # -- set-up --------------------------------------------------------------------------------

    async def initialize(
        self,
        protocol_version: int,
        client_capabilities: ClientCapabilities | None = None,
        client_info: Implementation | None = None,
        **kwargs: Any,
    ) -> InitializeResponse:
        if client_capabilities is not None:
            self._client_caps = client_capabilities
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=True,
                mcp_capabilities=McpCapabilities(http=True),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities()),
                prompt_capabilities=PromptCapabilities(
                    image=True, audio=True, embedded_context=True
                ),
            ),
            agent_info=Implementation(name="gemma-agent", title="Gemma Agent", version=__version__),
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> None:
        return None

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **kwargs: Any
    ) -> NewSessionResponse:
        session = await self._open(cwd, None, mcp_servers)
        return NewSessionResponse(
            session_id=session.id, modes=self._modes(session), config_options=self._options(session)
        )

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None, **kwargs: Any
    ) -> LoadSessionResponse:
        session = await self._open(cwd, session_id, mcp_servers)
        session.titled = True  # by its first prompt, long ago
        history = session.agent.open_session(session.id)
        children: dict[str, list[tuple[str, list[Any]]]] = {}
        for run in session.agent.subagent_runs(session.id):
            children.setdefault(run.call_id, []).append((run.agent, run.history))
        for update in updates.replay(history, session.workspace, children):
            await self.client.session_update(session_id=session.id, update=update)
        return LoadSessionResponse(
            modes=self._modes(session), config_options=self._options(session)
        )

    async def list_sessions(
        self, cwd: str | None = None, cursor: str | None = None, **kwargs: Any
    ) -> ListSessionsResponse:
        """The saved sessions of ``cwd`` (else of the folders of this connection's sessions
        and of our own folder), newest first, with their titles (their first prompt)."""
        folders = [_folder(cwd)] if cwd else [s.workspace for s in self._sessions.values()]
        if not cwd:
            folders.append(Path.cwd())
        found: dict[str, SessionInfo] = {}
        modified: dict[str, float] = {}
        for folder in dict.fromkeys(f.resolve() for f in folders):
            for saved in self._agent_of(folder).session_summaries():
                found[saved.session_id] = SessionInfo(
                    session_id=saved.session_id,
                    cwd=str(folder),
                    title=saved.title or None,
                    updated_at=_iso(saved.modified),
                )
                modified[saved.session_id] = saved.modified or 0.0
        ordered = sorted(found.values(), key=lambda i: modified[i.session_id], reverse=True)
        start = int(cursor) if cursor and cursor.isdigit() else 0
        page = ordered[start : start + LIST_PAGE]
        more = start + LIST_PAGE < len(ordered)
        return ListSessionsResponse(
            sessions=page, next_cursor=str(start + LIST_PAGE) if more else None
        )

    def _agent_of(self, folder: Path) -> Agent:
        """An agent of ``folder`` that knows its saved sessions: an open session's, else a
        bare one (no engine: it only reads the folder's session logs)."""
        for session in self._sessions.values():
            if session.workspace.resolve() == folder:
                return session.agent
        return Agent(workspace=folder, tools=[])

    async def _open(
        self, cwd: str, session_id: str | None, mcp_servers: list[Any] | None = None
    ) -> _Session:
        workspace = _folder(cwd)
        mcp, notices = await editor_mcp.start(mcp_servers, workspace, trust=self._trust_mcp)
        try:
            session = await self._build(workspace, session_id, mcp)
        except BaseException:
            await mcp.aclose()
            raise
        session.notices += notices
        return session

    async def _build(self, workspace: Path, session_id: str | None, mcp: MCPServers) -> _Session:
        fs = self._client_caps.fs
        files = (
            EditorFiles(self.client) if fs and fs.read_text_file and fs.write_text_file else None
        )
        terminals = EditorTerminals(self.client) if self._client_caps.terminal else None

        def wrap_tools(tools: Sequence[Tool]) -> list[Tool]:
            tools = files.tools(tools) if files is not None else list(tools)
            tools = terminals.tools(tools) if terminals is not None else tools
            return [*tools, *mcp.tools()]

        try:
            made = self._factory(workspace, wrap_tools)
            agent = await made if inspect.isawaitable(made) else made
            if session_id is None:
                session_id = agent.new_session()
            elif session_id not in agent.sessions():
                raise RequestError.resource_not_found(session_id)
        except AgentError as e:
            raise RequestError.invalid_params({"details": str(e)}) from e
        policy = agent.policy
        mode = "plan" if agent.mode == "plan" else str(getattr(policy, "mode", "yolo"))
        session = _Session(
            session_id, agent, agent.workspace, mode, files=files, terminals=terminals, mcp=mcp
        )
        for helper in (files, terminals):
            if helper is not None:
                helper.session_id = session_id
        previous = self._sessions.get(session_id)
        if previous is not None:  # loaded again
            await self._close(previous)
        self._sessions[session_id] = session
        return session

    def _modes(self, session: _Session) -> SessionModeState:
        return SessionModeState(
            current_mode_id=session.mode,
            available_modes=[SessionMode(id=k, name=k, description=v) for k, v in MODES.items()],
        )

    def _options(self, session: _Session) -> list[Any]:
        options: list[Any] = []
        current = self._models.current() if self._models is not None else None
        choices = self._models.choices() if self._models is not None else []
        if current is not None and choices:
            if current not in {name for name, _ in choices}:
                choices = [(current, "the model started with"), *choices]
            options.append(
                SessionConfigOptionSelect(
                    type="select",
                    id="model",
                    name="Model",
                    category="model",
                    description="The model every session runs on (switching starts it: "
                    "minutes for a large one)",
                    current_value=current,
                    options=[
                        SessionConfigSelectOption(value=name, name=name, description=about)
                        for name, about in choices
                    ],
                )
            )
        options.append(
            SessionConfigOptionBoolean(
                type="boolean",
                id="thinking",
                name="Thinking",
                category="thought_level",
                description="Let the model reason before it answers",
                current_value=bool(session.agent.thinking),
            )
        )
        return options

    async def set_session_mode(
        self, session_id: str, mode_id: str, **kwargs: Any
    ) -> SetSessionModeResponse:
        session = self._session(session_id)
        if mode_id not in MODES:
            raise RequestError.invalid_params({"modeId": f"one of {', '.join(MODES)}"})
        if mode_id != "plan":
            policy = session.agent.policy
            if policy is None or not hasattr(policy, "mode"):
                from ..tools import ApprovalPolicy

                session.agent.policy = ApprovalPolicy.for_project(session.workspace, mode_id)  # type: ignore[arg-type]
            else:
                policy.mode = mode_id
        session.mode = mode_id
        return SetSessionModeResponse()

    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **kwargs: Any
    ) -> SetSessionConfigOptionResponse:
        session = self._session(session_id)
        if config_id == "model" and self._models is not None:
            await self._switch_model(str(value))
            for other in list(self._sessions.values()):  # the others' pickers change too
                if other is not session:
                    update = ConfigOptionUpdate(
                        session_update="config_option_update", config_options=self._options(other)
                    )
                    await self.client.session_update(session_id=other.id, update=update)
            return SetSessionConfigOptionResponse(config_options=self._options(session))
        if config_id != "thinking":
            raise RequestError.invalid_params({"configId": "one of 'thinking', 'model'"})
        on = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on", "yes")
        session.agent.set_thinking(on, session.agent.thinking_budget)
        return SetSessionConfigOptionResponse(config_options=self._options(session))

    async def _switch_model(self, model: str) -> None:
        """Every session goes on with ``model``: refused while a prompt runs."""
        assert self._models is not None
        if any(s.task is not None and not s.task.done() for s in self._sessions.values()):
            raise RequestError.invalid_request(
                {"details": "a prompt is running: switch the model when it has ended"}
            )
        async with self._switching:
            try:
                engine = await self._models.switch(model)
            except AgentError as e:
                with contextlib.suppress(Exception):  # the previous model, started again
                    self._use(await self._models.get())
                raise RequestError.invalid_params({"details": str(e)}) from e
            self._use(engine)

    def _use(self, engine: Engine) -> None:
        for session in self._sessions.values():
            session.agent.use_engine(engine, close_engine=False)

    # -- prompts ---------------------------------------------------------------------------------

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        session = self._session(session_id)
        if session.task is not None and not session.task.done():
            raise RequestError.invalid_request({"details": "a prompt is already running"})
        task = _prompt_task(prompt)
        async with self._switching:  # a model switch ends first
            pass
        session.cancelled = session.answered = False
        session.task = asyncio.create_task(
            self._run(session, task), name=f"acp-prompt:{session_id}"
        )
        try:
            return await asyncio.shield(session.task)
        except asyncio.CancelledError:
            if session.task.done() or not session.cancelled:
                session.task.cancel()
                raise
            with contextlib.suppress(asyncio.CancelledError):
                return await session.task
            return PromptResponse(stop_reason="cancelled")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self._sessions.get(session_id)
        if session is None or session.task is None or session.task.done():
            return
        session.cancelled = True
        session.task.cancel()

    async def _run(self, session: _Session, task: Any) -> PromptResponse:
        tracker = updates.DiffTracker(session.workspace)

        def on_emit(event: Event) -> None:
            while isinstance(event, SubagentEvent):  # a child's edits are shown as diffs too
                event = event.event
            if isinstance(event, ToolCallStarted):
                tracker.started(event.call)
            elif isinstance(event, ToolCallFinished):
                tracker.finished(event.call, event.result)

        stream = session.agent.stream(
            task,
            session_id=session.id,
            answers_approvals=True,
            on_emit=on_emit,
            mode="plan" if session.mode == "plan" else "default",
        )
        finished: RunFinished | None = None
        notices, session.notices = session.notices, []
        for notice in notices:
            await self._say(session, f"\n[warning] {notice}\n", thought=True)
        try:
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, RunFinished):
                        finished = event
                    await self._show(session, event, tracker)
        except asyncio.CancelledError:
            if session.cancelled:
                return PromptResponse(stop_reason="cancelled")
            raise
        except AgentError as e:
            raise RequestError.invalid_params({"details": str(e)}) from e
        if finished is None:
            raise RequestError.internal_error({"details": "the run ended without a result"})
        if not session.titled:  # its first prompt names it (as session/list says)
            session.titled = True
            title = " ".join(_title(task).split())[:80]
            when = _iso(datetime.now(UTC).timestamp())
            if title:
                info = SessionInfoUpdate(
                    session_update="session_info_update", title=title, updated_at=when
                )
                await self.client.session_update(session_id=session.id, update=info)
        reason = STOP_REASONS.get(finished.reason)
        if reason is None:
            why = finished.error or finished.reason
            await self._say(session, f"\n\n(stopped: {finished.reason}: {why})")
            reason = "end_turn"
        return PromptResponse(stop_reason=reason)  # type: ignore[arg-type]

    async def _say(self, session: _Session, text: str, *, thought: bool = False) -> None:
        from acp import update_agent_message_text, update_agent_thought_text

        update = (update_agent_thought_text if thought else update_agent_message_text)(text)
        await self.client.session_update(session_id=session.id, update=update)

    async def _show(self, session: _Session, event: Event, tracker: updates.DiffTracker) -> None:
        from acp import update_agent_message_text, update_agent_thought_text, update_plan

        update: Any = None
        match event:
            case ThinkingDelta():
                update = update_agent_thought_text(event.text)
            case TextDelta():
                session.answered = True
                update = update_agent_message_text(event.text)
            case ToolCallStarted() if event.call.name == FINAL_ANSWER:
                pass  # the answer, not a tool call: shown as the answer once accepted
            case ToolCallFinished() if event.call.name == FINAL_ANSWER:
                if event.result.is_error:  # refused (bad arguments): the model tries again
                    start = updates.start(event.call, session.workspace)
                    await self.client.session_update(session_id=session.id, update=start)
                    update = updates.finish(event.call, event.result, None)
            case ToolCallStarted():
                await self._started(session, updates.start(event.call, session.workspace))
            case ToolCallFinished():
                diff = _diff(session, tracker, event)
                terminal = _terminal(session, event.call.id)
                update = updates.finish(event.call, event.result, diff, terminal=terminal)
            case ApprovalRequested():
                event.respond(await self._ask(session, event))
                return
            case PlanUpdated():
                update = update_plan(updates.plan_entries(event.items))
            case Notice():
                if event.level != "info":
                    update = update_agent_thought_text(f"\n[{event.level}] {event.message}\n")
            case SubagentEvent():
                await self._show_child(session, event, tracker)
                return
            case RunFinished():
                answer = event.output
                if event.reason == "final_answer" and answer is not None and not session.answered:
                    update = update_agent_message_text(updates.answer_text(answer))
            case HistoryCompacted() | Usage() | TurnFinished() | RunStarted():
                pass
        if update is not None:
            await self.client.session_update(session_id=session.id, update=update)

    async def _show_child(
        self, session: _Session, wrapped: SubagentEvent, tracker: updates.DiffTracker
    ) -> None:
        """A sub-agent's event: its tool calls as the session's (titled with its path), its
        warnings as thoughts naming it, its start as its task call's. Its thinking, text and
        plan are not the session's answer or plan: they are left out (its report is its task
        call's result)."""
        from acp import update_agent_thought_text

        agent, event = wrapped.agent, wrapped.event
        update: Any = None
        match event:
            case RunStarted():  # the task call that runs it is at work
                update = update_tool_call(updates.task_call_id(wrapped), status="in_progress")
            case ToolCallStarted() | ToolCallFinished() if event.call.name == FINAL_ANSWER:
                pass  # its report: the task call's result
            case ToolCallStarted():
                await self._started(session, updates.start(event.call, session.workspace, agent))
            case ToolCallFinished():
                diff = _diff(session, tracker, event)
                terminal = _terminal(session, updates.call_id(event.call, agent))
                update = updates.finish(event.call, event.result, diff, agent, terminal=terminal)
            case Notice():
                if event.level != "info":
                    who = agent_label(agent)
                    update = update_agent_thought_text(
                        f"\n[{event.level}] {who}: {event.message}\n"
                    )
            case ApprovalRequested() | SubagentEvent():  # not wrapped today; answered if so
                await self._show(session, event, tracker)
            case (
                ThinkingDelta() | TextDelta() | PlanUpdated() | HistoryCompacted() | Usage()
                | TurnFinished() | RunFinished()
            ):  # fmt: skip
                pass
        if update is not None:
            await self.client.session_update(session_id=session.id, update=update)

    async def _started(self, session: _Session, update: Any) -> None:
        """A tool call is shown; a command of it may now show its terminal."""
        await self.client.session_update(session_id=session.id, update=update)
        if session.terminals is not None:
            session.terminals.shown(update.tool_call_id)

    async def _ask(self, session: _Session, event: ApprovalRequested) -> ApprovalDecision:
        call = event.call
        call_id = updates.call_id(call, event.agent)  # a sub-agent's: as its tool call was shown
        response = await self.client.request_permission(
            session_id=session.id,
            tool_call=ToolCallUpdate(
                tool_call_id=call_id,
                title=updates.title(call, event.agent),
                kind=updates.tool_kind(call.name),
                status="pending",
                locations=updates.locations(call, session.workspace),
                raw_input=call.arguments,
            ),
            options=[PermissionOption(option_id=i, name=n, kind=k) for i, n, k, _ in PERMISSIONS],
        )
        outcome = response.outcome
        if not isinstance(outcome, AllowedOutcome):
            return "deny"  # the client cancelled the request (the prompt is being cancelled)
        decision = {i: d for i, _, _, d in PERMISSIONS}.get(outcome.option_id, "deny")
        if decision != "deny":
            await self.client.session_update(
                session_id=session.id, update=update_tool_call(call_id, status="in_progress")
            )
        return decision

    # -- ends ------------------------------------------------------------------------------------

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise RequestError.resource_not_found(session_id)
        return session

    async def _close(self, session: _Session) -> None:
        if session.task is not None and not session.task.done():
            session.task.cancel()
            await asyncio.wait({session.task})
        try:
            await session.agent.aclose()
        finally:
            if session.mcp is not None:
                await session.mcp.aclose()

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await self._close(session)


def _diff(
    session: _Session, tracker: updates.DiffTracker, event: ToolCallFinished
) -> tuple[str, str | None, str] | None:
    """The change a file tool's call made: through the editor's file system, or on disk."""
    diff = tracker.diffs.pop(event.call.id, None)
    if session.files is not None:
        diff = session.files.diffs.pop(event.call.id, None) or diff
    return diff


def _terminal(session: _Session, call_id: str) -> str | None:
    """The editor's terminal a finished call ran its command in, if any."""
    return session.terminals.forget(call_id) if session.terminals is not None else None


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def _folder(cwd: str) -> Path:
    workspace = Path(os.path.expanduser(cwd))
    if not workspace.is_dir():
        raise RequestError.invalid_params({"cwd": f"{cwd} is not a folder"})
    return workspace


def _prompt_task(blocks: list[Any]) -> str | list[Any]:
    """ACP content blocks as an agent task: text (embedded resources as context), images, audio."""
    parts: list[Any] = []
    text: list[str] = []
    for block in blocks:
        if isinstance(block, TextContentBlock):
            text.append(block.text)
        elif isinstance(block, ResourceContentBlock):
            text.append(f"[{block.name}]({block.uri})")
        elif isinstance(block, EmbeddedResourceContentBlock):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                text.append(f'\n<context uri="{resource.uri}">\n{resource.text}\n</context>\n')
            else:
                text.append(f"[{resource.uri} ({resource.mime_type or 'binary'})]")
        elif isinstance(block, ImageContentBlock | AudioContentBlock):
            data = base64.b64decode(block.data)
            maker = Image if isinstance(block, ImageContentBlock) else Audio
            try:
                parts.append(maker.from_bytes(data, _media_name(block)))
            except AgentError as e:
                raise RequestError.invalid_params({"details": str(e)}) from e
    joined = "\n".join(t for t in text if t)
    return [joined, *parts] if parts else joined


def _title(task: str | list[Any]) -> str:
    return task if isinstance(task, str) else next((t for t in task if isinstance(t, str)), "")


def _media_name(block: ImageContentBlock | AudioContentBlock) -> str:
    kind = "image" if isinstance(block, ImageContentBlock) else "audio"
    suffix = block.mime_type.split("/")[-1].split(";")[0] if block.mime_type else "bin"
    return f"{kind}.{suffix}"


async def serve_acp(
    agent_factory: AgentFactory,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    models: Models | None = None,
    trust_mcp: bool = False,
) -> None:
    """Serve ACP on a pair of streams until the client hangs up (the CLI passes stdin/stdout).

    ``agent_factory(folder)`` builds the agent of each session (it may be async); the agents
    are closed when the connection ends. ``models``: the model picker (a session config
    option), where the engine can be switched. ``trust_mcp``: start the project's configured MCP
    servers (and remember them as trusted)."""
    server = GemmaACPAgent(agent_factory, models, trust_mcp=trust_mcp)
    try:
        await run_agent(cast(Any, server), writer, reader)
    finally:
        await server.aclose()
