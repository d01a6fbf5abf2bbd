"""`gemma-agent acp`: the agent behind the Agent Client Protocol (Zed, JetBrains, Neovim, Toad).

One `Agent` per ACP session, built by an agent factory for the session's folder (the CLI's
shares one engine between them). A prompt runs ``agent.stream(..., answers_approvals=True)``
and every event becomes a ``session/update``; a call the approval policy asks about becomes a
``session/request_permission`` (allow once / always / reject); ``session/cancel`` cancels the
task that drives the stream (the partial turn is kept in the session, as anywhere else).
Sessions are ours: ``session/load`` reopens a saved one and replays it as updates.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from acp import PROTOCOL_VERSION, RequestError, run_agent, update_tool_call
from acp.interfaces import Client
from acp.schema import (
    AgentCapabilities,
    AllowedOutcome,
    AudioContentBlock,
    ClientCapabilities,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    Implementation,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptCapabilities,
    PromptResponse,
    ResourceContentBlock,
    SessionConfigOptionBoolean,
    SessionMode,
    SessionModeState,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
    TextContentBlock,
    TextResourceContents,
    ToolCallUpdate,
)

from .. import Agent, Audio, Image, __version__
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
    TextDelta,
    ThinkingDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    Usage,
)
from ..tools import Tool
from . import acp_updates as updates
from .editor_fs import EditorFiles

log = logging.getLogger(__name__)

ToolsHook = Callable[[Sequence[Tool]], list[Tool]]
AgentFactory = Callable[[Path, ToolsHook], "Agent | Awaitable[Agent]"]
"""Builds the agent of a new or loaded session: ``factory(folder, wrap_tools)`` with the
session's folder (its ``cwd``) and a hook the agent's tools go through, which swaps in the
editor's file system for the file tools when the client offers it (else returns them as they
are). It may be async."""

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


class GemmaACPAgent:
    """The ACP ``Agent`` side (``acp.interfaces.Agent``) over gemma-agent's SDK."""

    def __init__(self, agent_factory: AgentFactory) -> None:
        self._factory = agent_factory
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
        session = await self._open(cwd, None)
        return NewSessionResponse(
            session_id=session.id, modes=self._modes(session), config_options=self._options(session)
        )

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None, **kwargs: Any
    ) -> LoadSessionResponse:
        session = await self._open(cwd, session_id)
        history = session.agent.open_session(session.id)
        for update in updates.replay(history, session.workspace):
            await self.client.session_update(session_id=session.id, update=update)
        return LoadSessionResponse(
            modes=self._modes(session), config_options=self._options(session)
        )

    async def _open(self, cwd: str, session_id: str | None) -> _Session:
        workspace = _folder(cwd)
        fs = self._client_caps.fs
        files = (
            EditorFiles(self.client) if fs and fs.read_text_file and fs.write_text_file else None
        )

        def wrap_tools(tools: Sequence[Tool]) -> list[Tool]:
            return files.tools(tools) if files is not None else list(tools)

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
        session = _Session(session_id, agent, agent.workspace, mode, files=files)
        if files is not None:
            files.session_id = session_id
        previous = self._sessions.get(session_id)
        if previous is not None:
            await self._close(previous)
        self._sessions[session_id] = session
        return session

    def _modes(self, session: _Session) -> SessionModeState:
        return SessionModeState(
            current_mode_id=session.mode,
            available_modes=[SessionMode(id=k, name=k, description=v) for k, v in MODES.items()],
        )

    def _options(self, session: _Session) -> list[Any]:
        return [
            SessionConfigOptionBoolean(
                type="boolean",
                id="thinking",
                name="Thinking",
                description="Let the model reason before it answers",
                current_value=bool(session.agent.thinking),
            )
        ]

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
        if config_id != "thinking":
            raise RequestError.invalid_params({"configId": "only 'thinking' can be set"})
        on = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on", "yes")
        session.agent.set_thinking(on, session.agent.thinking_budget)
        return SetSessionConfigOptionResponse(config_options=self._options(session))

    # -- prompts ---------------------------------------------------------------------------------

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        session = self._session(session_id)
        if session.task is not None and not session.task.done():
            raise RequestError.invalid_request({"details": "a prompt is already running"})
        task = _prompt_task(prompt)
        session.cancelled = False
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
        reason = STOP_REASONS.get(finished.reason)
        if reason is None:
            why = finished.error or finished.reason
            await self._say(session, f"\n\n(stopped: {finished.reason}: {why})")
            reason = "end_turn"
        return PromptResponse(stop_reason=reason)  # type: ignore[arg-type]

    async def _say(self, session: _Session, text: str) -> None:
        from acp import update_agent_message_text

        await self.client.session_update(
            session_id=session.id, update=update_agent_message_text(text)
        )

    async def _show(self, session: _Session, event: Event, tracker: updates.DiffTracker) -> None:
        from acp import update_agent_message_text, update_agent_thought_text, update_plan

        update: Any = None
        match event:
            case ThinkingDelta():
                update = update_agent_thought_text(event.text)
            case TextDelta():
                update = update_agent_message_text(event.text)
            case ToolCallStarted():
                update = updates.start(event.call, session.workspace)
            case ToolCallFinished():
                diff = tracker.diffs.pop(event.call.id, None)
                if session.files is not None:
                    diff = session.files.diffs.pop(event.call.id, None) or diff
                update = updates.finish(event.call, event.result, diff)
            case ApprovalRequested():
                event.respond(await self._ask(session, event))
                return
            case PlanUpdated():
                update = update_plan(updates.plan_entries(event.items))
            case Notice():
                if event.level != "info":
                    update = update_agent_thought_text(f"\n[{event.level}] {event.message}\n")
            case HistoryCompacted() | Usage() | TurnFinished() | RunStarted() | RunFinished():
                pass
        if update is not None:
            await self.client.session_update(session_id=session.id, update=update)

    async def _ask(self, session: _Session, event: ApprovalRequested) -> ApprovalDecision:
        call = event.call
        response = await self.client.request_permission(
            session_id=session.id,
            tool_call=ToolCallUpdate(
                tool_call_id=call.id,
                title=updates.tool_title(call),
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
                session_id=session.id, update=update_tool_call(call.id, status="in_progress")
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
        await session.agent.aclose()

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await self._close(session)


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


def _media_name(block: ImageContentBlock | AudioContentBlock) -> str:
    kind = "image" if isinstance(block, ImageContentBlock) else "audio"
    suffix = block.mime_type.split("/")[-1].split(";")[0] if block.mime_type else "bin"
    return f"{kind}.{suffix}"


async def serve_acp(
    agent_factory: AgentFactory, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve ACP on a pair of streams until the client hangs up (the CLI passes stdin/stdout).

    ``agent_factory(folder)`` builds the agent of each session (it may be async); the agents
    are closed when the connection ends."""
    server = GemmaACPAgent(agent_factory)
    try:
        await run_agent(cast(Any, server), writer, reader)
    finally:
        await server.aclose()
