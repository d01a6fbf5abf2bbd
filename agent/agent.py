"""The SDK: `Agent` (configuration + conversations) and `RunResult`.

    from gemma_agent import Agent, tool

    @tool
    def add(a: int, b: int) -> int:
        '''Add two numbers.'''
        return a + b

    agent = Agent("google/gemma-4-E4B-it", tools=[add], instructions="Be brief.")
    result = agent.run_sync("What is 2 + 3?")
    async for event in agent.stream("And 4 + 5?", session_id=result.session_id): ...

`stream()` is the single source of truth; `run()` drains it into a `RunResult`. Every run is a
session logged under ``<workspace>/.gemma-agent/sessions/``; pass ``session_id=`` to continue
one (from memory, or rebuilt from its log after a restart: `resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..tools import ToolRegistry
from ..tools.base import as_tool
from ..tools.recall import recall_output
from .compaction import (
    Compaction,
    CompactionContext,
    CompactionLedger,
    CompactionState,
    Compactor,
    LedgerEntry,
    RecordingCompactor,
)
from .engines.base import Engine, EngineInfo
from .events import (
    ApprovalRequested,
    DroppedItem,
    Event,
    HistoryCompacted,
    Notice,
    RunFinished,
    RunStarted,
    RunUsage,
    StopReason,
)
from .execute import ApprovalCallback, ToolRuntime
from .limits import RunLimits, ThinkingBudget
from .loop import run_loop
from .messages import Message, ModelTurn, UserMessage, new_id
from .model import ModelLayer
from .output import FINAL_ANSWER, OutputTool
from .session import (
    SessionLog,
    SessionSummary,
    list_sessions,
    load_session,
    new_session_id,
    saved_model,
    session_path,
    session_summaries,
)
from .state import RunState

if TYPE_CHECKING:
    from .media import MediaLimits

_DEFAULT: Any = object()


@dataclass
class RunResult:
    output: Any  # str, or an instance of the agent's output_type; None if the run stopped early
    turns: list[Message]  # the session's whole history after the run
    usage: RunUsage
    session_id: str
    reason: StopReason
    steps: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "final_answer"


@dataclass
class _Conversation:
    """A session held in memory between runs."""

    session_id: str
    history: list[Message]
    log: SessionLog | None
    ledger: CompactionLedger = field(default_factory=CompactionLedger)
    compaction: CompactionState = field(default_factory=CompactionState)
    model: ModelLayer | None = None
    spill: Any = None
    busy: bool = False


class Agent:
    """A Gemma 4 agent: configuration, plus the sessions it has run (kept in memory)."""

    def __init__(
        self,
        model: str | None = None,
        *,
        engine: Engine | None = None,
        tools: Iterable[Any] | ToolRegistry = (),
        instructions: str | None = None,
        workspace: str | Path = ".",
        thinking: bool = False,
        thinking_budget: int | ThinkingBudget | None = None,
        tool_choice: str = "auto",
        approval: Any = "auto",
        on_approval: ApprovalCallback | None = None,
        approval_timeout: float | None = None,
        max_steps: int = 50,
        max_tokens: int | None = None,
        time_limit: float | None = None,
        compactor: Compactor | None = _DEFAULT,
        output_type: Any = None,
        sessions_dir: str | Path | None = None,
        max_output_tokens: int = 4096,
        plan_first: bool = False,
        max_consecutive_errors: int = 5,
        max_redecodes: int = 2,
        loop_nudge_after: int = 3,
        loop_stop_after: int = 5,
        persist: bool = True,
        fsync: bool = True,
        temperature: float | None = None,
        seed: int | None = None,
        engine_options: Mapping[str, Any] | None = None,
        media_limits: MediaLimits | None = None,
        close_engine: bool = False,
    ) -> None:
        if model is not None and engine is not None:
            raise ConfigError("Pass either model= (a name or path) or engine=, not both.")
        self.model_name = model
        # Extra settings for the engine built from ``model`` (engines.factory.EngineConfig
        # fields: max_model_len, engine="http", base_url=[...], gpu_memory_utilization, ...).
        self.engine_options = dict(engine_options or {})
        self._engine = engine
        # close_engine=True: aclose() closes a given engine too (the agent's owner hands it over).
        self._owns_engine = close_engine
        self.registry = (
            tools if isinstance(tools, ToolRegistry) else ToolRegistry([as_tool(t) for t in tools])
        )
        self.instructions = instructions
        self.workspace = Path(workspace).resolve()
        self.thinking = thinking
        self.thinking_budget = ThinkingBudget.of(thinking_budget)
        self.limits = RunLimits(
            max_steps=max_steps,
            max_tokens=max_tokens,
            time_limit=time_limit,
            max_consecutive_errors=max_consecutive_errors,
            max_redecodes=max_redecodes,
            loop_nudge_after=loop_nudge_after,
            loop_stop_after=loop_stop_after,
        )
        if output_type is None and tool_choice not in ("auto", "none"):
            output_type = str  # with calls required, the run ends through final_answer(answer)
        self.output_tool = OutputTool(output_type) if output_type is not None else None
        names = self.registry.names()
        if self.output_tool is not None and FINAL_ANSWER in names:
            raise ConfigError(f"A tool is named {FINAL_ANSWER!r}; that name is reserved.")
        if tool_choice not in ("auto", "required", "none") and tool_choice not in names:
            raise ConfigError(
                f"tool_choice={tool_choice!r}: use auto, required, none or a tool name "
                f"({', '.join(names) or 'no tools given'})."
            )
        if plan_first and "update_plan" not in names:
            raise ConfigError("plan_first=True needs the update_plan tool (tools.coding_tools()).")
        self.tool_choice = tool_choice
        self.plan_first = plan_first
        self.policy = _policy(approval, self.workspace)
        self.on_approval = on_approval
        if approval_timeout is not None and approval_timeout <= 0:
            raise ConfigError(f"approval_timeout={approval_timeout}: give seconds > 0, or None.")
        self.approval_timeout = approval_timeout
        if compactor is _DEFAULT:
            from .compaction import default_compactor

            compactor = default_compactor()
        self.compactor: Compactor | None = compactor
        # recall_output is declared only when something can be recalled: compaction clips and
        # clears results and keeps their full text in the spill store. With compaction off the
        # model sees no such tool, and tool outputs cut at the registry's cap are not kept.
        if compactor is not None and recall_output.name not in self.registry:
            self.registry.add(recall_output)
        self.sessions_dir = (
            Path(sessions_dir) if sessions_dir else self.workspace / ".gemma-agent" / "sessions"
        )
        self.max_output_tokens = max_output_tokens
        self.persist = persist
        self.fsync = fsync
        self.sampling = {"temperature": temperature, "seed": seed}
        # Per-request image/audio limits (agent.media.MediaLimits); None: the defaults.
        self.media_limits = media_limits
        self.session_id: str | None = None  # the session of the last run
        self._conversations: dict[str, _Conversation] = {}

    # -- engine ------------------------------------------------------------------------------

    async def engine(self) -> Engine:
        """The engine; built from ``model`` on first use (in the running event loop)."""
        if self._engine is None:
            from .engines.factory import create_engine

            self._engine = await create_engine({"model": self.model_name, **self.engine_options})
            self._owns_engine = True
        return self._engine

    @property
    def engine_info(self) -> EngineInfo | None:
        """The engine's model, variant, context length and modalities; None before it is built."""
        return getattr(self._engine, "info", None) if self._engine is not None else None

    def use_engine(self, engine: Engine, *, close_engine: bool = True) -> Engine | None:
        """Switch every session to another engine (another model) from its next run on.

        The histories are kept. Each session's next request renders its history afresh for the
        new engine, with its tokenizer and its variant's template family (E4B and 31B differ):
        no prompt ids of the old engine are reused. A history longer than the new context is
        compacted by the next run as usual (with compaction off that run stops with
        ``context_overflow``). ``model_name`` becomes the new engine's model.

        Refused (ConfigError) while a session is running: cancel or finish the run first.
        Returns the previous engine (None if there was none or it is the same one), which is
        now the caller's to close (``await previous.aclose()``: that releases a vLLM engine's
        core process and memory). ``close_engine``: `aclose` closes the new engine too.
        """
        busy = [c.session_id for c in self._conversations.values() if c.busy]
        if busy:
            raise ConfigError(
                f"Session {busy[0]} is running: switch the engine when the run has ended "
                "(or cancel it)."
            )
        previous, self._engine = self._engine, engine
        self._owns_engine = close_engine
        self.model_name = engine.info.model
        if previous is engine:
            return None
        for conv in self._conversations.values():
            if conv.model is not None:  # built for the old engine: tokenizer, variant, live ids
                conv.model.invalidate()
                conv.model = None
        return previous

    async def context_usage(self, session_id: str | None = None) -> tuple[int, int]:
        """``(tokens, limit)`` of a session (default: the current one) on the current engine:
        its history's size as the engine sees it (system turn and tools included), and the
        usable context (the model's length minus the reserve for the output). Renders the
        history if the engine has not seen it yet (kept for the next request). Between runs.
        """
        conv = self._conversation(session_id)
        if conv.busy:
            raise ConfigError(f"Session {conv.session_id} is running; its Usage events say this.")
        model = await self._model_for(conv)
        return model.context_tokens(conv.history), model.context_limit

    def set_thinking(self, on: bool, budget: int | ThinkingBudget | None = None) -> None:
        """Thinking on/off and its budget (None: none) from the next request of every session.
        The prompt is rendered with thinking on or off, so the next request re-renders it."""
        self.thinking = on
        self.thinking_budget = ThinkingBudget.of(budget)
        for conv in self._conversations.values():
            if conv.model is not None:
                conv.model.thinking = on
                conv.model.invalidate()

    async def aclose(self) -> None:
        """Close the session logs and the engine if this agent built it (or close_engine=True)."""
        for conv in self._conversations.values():
            if conv.log is not None:
                conv.log.close()
        if self._owns_engine and self._engine is not None:
            engine, self._engine = self._engine, None
            for conv in self._conversations.values():
                conv.model = None
            await engine.aclose()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- running -------------------------------------------------------------------------------

    async def stream(
        self,
        task: str | Sequence[Any] | None = None,
        *,
        deps: Any = None,
        session_id: str | None = None,
        on_emit: Callable[[Event], None] | None = None,
        answers_approvals: bool = False,
    ) -> AsyncGenerator[Event, None]:
        """Run a task and yield its events; ends with `RunFinished`.

        Approvals: a call the approval policy asks about goes to ``on_approval`` (the agent's
        callback) if there is one; else, with ``answers_approvals=True``, the run waits until
        the consumer calls ``event.respond(...)`` on the `ApprovalRequested` event; else nobody
        can answer and the call is denied at once (the model reads why; a `Notice` says so).
        ``approval_timeout`` (the agent's) bounds every wait: no answer in time is a denial.

        Close the iterator (``async with contextlib.aclosing(...)``) or cancel the task that
        drives it to stop the run: tools are cancelled, the partial turn is kept.

        ``on_emit`` sees each event synchronously when the run produces it, before the run goes
        on (a consumer of the iterator sees it later): e.g. `ToolCallStarted` before the call
        runs, to read a file the call is about to change. Keep it quick; it must not raise.
        """
        queue: asyncio.Queue[object] = asyncio.Queue()
        end = object()
        put: Callable[[object], None] = queue.put_nowait
        if on_emit is not None:
            tap = on_emit

            def put(event: object) -> None:
                tap(event)  # type: ignore[arg-type]
                queue.put_nowait(event)

        async def produce() -> None:
            try:
                await self._run(task, deps, session_id, put, answers_approvals)
            finally:
                queue.put_nowait(end)

        producer = asyncio.create_task(produce(), name="gemma-agent-run")
        try:
            while True:
                item = await queue.get()
                if item is end:
                    break
                yield item  # type: ignore[misc]
            await producer  # re-raises what the run raised
        finally:
            if not producer.done():
                producer.cancel()
                await asyncio.wait({producer})

    async def run(
        self,
        task: str | Sequence[Any] | None = None,
        *,
        deps: Any = None,
        session_id: str | None = None,
        on_event: Callable[[Event], Any] | None = None,
        answers_approvals: bool = False,
    ) -> RunResult:
        """Drain `stream` into a `RunResult`; ``on_event`` sees every event (it may answer
        `ApprovalRequested` with ``event.respond(...)`` when ``answers_approvals=True``)."""
        started: RunStarted | None = None
        finished: RunFinished | None = None
        stream = self.stream(
            task, deps=deps, session_id=session_id, answers_approvals=answers_approvals
        )
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                if on_event is not None:
                    on_event(event)
                if isinstance(event, RunStarted):
                    started = event
                elif isinstance(event, RunFinished):
                    finished = event
        assert started is not None and finished is not None, "a run ends with RunFinished"
        return RunResult(
            output=finished.output,
            turns=self.history(started.session_id),
            usage=finished.usage or RunUsage(),
            session_id=started.session_id,
            reason=finished.reason,
            steps=finished.steps,
            error=finished.error,
        )

    def run_sync(
        self,
        task: str | Sequence[Any] | None = None,
        *,
        deps: Any = None,
        session_id: str | None = None,
    ) -> RunResult:
        """`run` in a fresh event loop. An engine the agent built is closed at the end.
        Nobody answers approvals here but ``on_approval``: without it, asked calls are denied."""

        async def main() -> RunResult:
            try:
                return await self.run(task, deps=deps, session_id=session_id)
            finally:
                if self._owns_engine:
                    await self.aclose()

        return asyncio.run(main())

    async def resume(
        self, session_id: str, task: str | Sequence[Any] | None = None, *, deps: Any = None
    ) -> RunResult:
        """Continue a session (from memory, or rebuilt from its log), optionally with a new task."""
        return await self.run(task, deps=deps, session_id=session_id)

    def open_session(self, session_id: str) -> list[Message]:
        """Load a saved session without running it; it becomes the current session."""
        conv, _ = self._open(session_id, [])
        self.session_id = conv.session_id
        return list(conv.history)

    def sessions(self) -> list[str]:
        """Saved session ids, newest first."""
        return list_sessions(self.sessions_dir)

    def session_summaries(self, limit: int | None = None) -> list[SessionSummary]:
        """The saved sessions, newest first (at most ``limit``): id, file, title, time."""
        return session_summaries(self.sessions_dir, limit=limit)

    def session_file(self, session_id: str) -> Path:
        """Where a session's log is (or will be) saved; ConfigError for an invalid id."""
        return session_path(self.sessions_dir, session_id)

    def session_model(self, session_id: str) -> tuple[str, str | None] | None:
        """The model (and variant) a saved session last ran on; None when unknown."""
        return saved_model(session_path(self.sessions_dir, session_id))

    def history(self, session_id: str | None = None) -> list[Message]:
        """The messages of a session held in memory (default: the current one); [] if none."""
        conv = self._conversations.get(session_id or self.session_id or "")
        return list(conv.history) if conv else []

    # -- compaction ----------------------------------------------------------------------------

    async def compact(
        self, focus: str | None = None, *, session_id: str | None = None
    ) -> HistoryCompacted | None:
        """Compact a session's history now (between runs); returns what was done."""
        conv = self._conversation(session_id)
        if self.compactor is None:
            raise ConfigError("Compaction is off (compactor=None).")
        if conv.busy:
            raise ConfigError("The session is running; compaction happens between its steps.")
        model = await self._model_for(conv)
        state = self._state(conv, model, lambda _e: None, None)
        ctx = CompactionContext(
            count_tokens=model.count_tokens,
            limit_tokens=model.context_limit,
            manual=True,
            focus=focus,
            summarize=state.summarize,
            spill=conv.spill,
            tokens=model.context_tokens(conv.history),
            state=conv.compaction,
        )
        done: Compaction | None = await self.compactor.compact(conv.history, ctx)
        if done is None:
            return None
        conv.ledger.record(conv.history, done)
        conv.history[:] = done.history
        if conv.log is not None:
            conv.log.compaction(list(done.history), done.event)
        return done.event

    def undo_compaction(self, *, session_id: str | None = None) -> None:
        """Restore the history from before the last compaction (messages added since are kept)."""
        conv = self._conversation(session_id)
        conv.history[:] = conv.ledger.undo(conv.history)
        if conv.log is not None:
            conv.log.write({"type": "undo_compaction"}, sync=True)

    # -- internals -----------------------------------------------------------------------------

    def _conversation(self, session_id: str | None) -> _Conversation:
        sid = session_id or self.session_id
        if sid is None or sid not in self._conversations:
            raise ConfigError("No session yet: run a task first (or pass session_id=).")
        return self._conversations[sid]

    def _open(self, session_id: str | None, notices: list[Notice]) -> tuple[_Conversation, bool]:
        """The conversation to run in, and whether it continues an earlier one."""
        if session_id is not None and session_id in self._conversations:
            return self._conversations[session_id], True
        from ..tools.spill import SpillStore

        if session_id is None:
            sid = new_session_id()
            log = None
            if self.persist:
                log = SessionLog.create(
                    self.sessions_dir,
                    sid,
                    fsync=self.fsync,
                    model=self.model_name
                    or (getattr(self._engine, "info", None) and self._engine.info.model),  # type: ignore[union-attr]
                    workspace=str(self.workspace),
                    thinking=self.thinking,
                )
            spill = SpillStore(self.sessions_dir / f"{sid}.spill") if self.persist else SpillStore()
            conv = _Conversation(sid, [], log, spill=spill)
            resumed = False
        else:
            path = session_path(self.sessions_dir, session_id)
            saved = load_session(path)
            notices += [Notice(w, "warning") for w in saved.warnings]
            log = SessionLog(path, fsync=self.fsync)
            conv = _Conversation(saved.session_id, saved.history, log)
            for before, after, event in saved.undo_stack:
                conv.ledger.entries.append(
                    LedgerEntry(
                        str(event.get("compaction_id") or new_id("c")),
                        tuple(before),
                        tuple(after),
                        _compacted_event(event),
                    )
                )
            conv.spill = SpillStore(self.sessions_dir / f"{saved.session_id}.spill")
            if saved.interrupted_turn is not None:
                log.message(saved.history[-1])  # the turn, completed with "interrupted" results
                notices.append(Notice("the last run was interrupted during tool calls", "warning"))
            resumed = True
        self._conversations[conv.session_id] = conv
        return conv, resumed

    async def _model_for(self, conv: _Conversation) -> ModelLayer:
        engine = await self.engine()
        if conv.model is None or conv.model.engine is not engine:
            decls = [] if self.tool_choice == "none" else self.registry.declarations()
            if self.output_tool is not None and self.tool_choice != "none":
                decls.append(self.output_tool.declaration())
            conv.model = ModelLayer(
                engine,
                declarations=decls,
                instructions=self.instructions,
                thinking=self.thinking,
                max_output_tokens=self.max_output_tokens,
                media=_media_loader,
            )
        return conv.model

    def _state(
        self,
        conv: _Conversation,
        model: ModelLayer,
        put: Callable[[object], None],
        deps: Any,
        answers_approvals: bool = False,
    ) -> RunState:
        runtime = ToolRuntime(
            registry=self.registry,
            workspace=self.workspace,
            policy=self.policy,
            on_approval=self.on_approval,
            answers_approvals=answers_approvals,
            approval_timeout=self.approval_timeout,
            deps=deps,
            spill=conv.spill if recall_output.name in self.registry else None,
            media_check=_media_checker(model, self.media_limits, conv.history),
        )
        return RunState(
            model=model,
            tools=runtime,
            history=conv.history,
            put=put,
            limits=self.limits,
            thinking=self.thinking_budget,
            tool_choice=self.tool_choice,
            plan_first=self.plan_first,
            output_tool=self.output_tool,
            compactor=self.compactor,
            log=conv.log,
            compaction=conv.compaction,
            sampling=dict(self.sampling),
        )

    async def _run(
        self,
        task: Any,
        deps: Any,
        session_id: str | None,
        put: Callable[[object], None],
        answers_approvals: bool = False,
    ) -> None:
        notices: list[Notice] = []
        conv, resumed = self._open(session_id, notices)
        if conv.busy:
            raise ConfigError(f"Session {conv.session_id} is already running.")
        conv.busy = True
        try:
            model = await self._model_for(conv)
            state = self._state(conv, model, put, deps, answers_approvals)
            self.session_id = conv.session_id
            text = ""
            if task is not None:
                from .media import as_user_input, check_media, prompt_attachments

                text, attachments = as_user_input(task)
                if attachments:
                    info = model.engine.info
                    check_media(
                        attachments,
                        modalities=info.modalities,
                        model=info.model,
                        limits=_limits(self.media_limits),
                        prompt_media=prompt_attachments(conv.history),
                        variant=info.variant,
                        max_model_len=info.max_model_len,
                        image_soft_tokens=info.image_soft_tokens,
                    )
                state.add_task(UserMessage(content=text, attachments=attachments))
            info = model.engine.info
            state.emit(
                RunStarted(conv.session_id, text, info.model, resumed=resumed, variant=info.variant)
            )
            for notice in notices:
                state.emit(notice)
            last = conv.history[-1] if conv.history else None
            if last is None:
                raise ConfigError("Nothing to do: give a task (the session is empty).")
            if isinstance(last, ModelTurn) and not last.tool_calls:
                state.finish("final_answer", output=last.text)  # resumed after its final answer
                return
            _wrap_compactor(state, conv)
            await run_loop(state)
        finally:
            conv.busy = False


def _compacted_event(data: dict[str, Any]) -> HistoryCompacted:
    return HistoryCompacted(
        tier=str(data.get("tier", "")),
        tokens_before=int(data.get("tokens_before", 0)),
        tokens_after=int(data.get("tokens_after", 0)),
        dropped=tuple(
            DroppedItem(str(d["id"]), str(d["description"])) for d in data.get("dropped", ())
        ),
        summary=data.get("summary"),
        compaction_id=str(data.get("compaction_id", "")),
    )


def _wrap_compactor(state: RunState, conv: _Conversation) -> None:
    """Record automatic compactions in the conversation's ledger (for undo)."""
    if state.compactor is not None:
        state.compactor = RecordingCompactor(state.compactor, conv.ledger)


def _limits(limits: MediaLimits | None) -> MediaLimits:
    from .media import MediaLimits

    return MediaLimits() if limits is None else limits


def _media_checker(
    model: ModelLayer, limits: MediaLimits | None, history: list[Message]
) -> Callable[[Sequence[Any]], None]:
    """Checks a tool's media against the engine and the limits (the history's media count)."""

    def check(attachments: Sequence[Any]) -> None:
        from .media import check_media, prompt_attachments

        info = model.engine.info
        check_media(
            attachments,
            modalities=info.modalities,
            model=info.model,
            limits=_limits(limits),
            prompt_media=prompt_attachments(history),
            variant=info.variant,
            max_model_len=info.max_model_len,
            image_soft_tokens=info.image_soft_tokens,
        )

    return check


def _media_loader(attachments: Sequence[Any]) -> list[Any]:
    from .media import to_media_items

    return to_media_items(attachments)


def _policy(approval: Any, workspace: Path) -> Any:
    if approval is None:
        return None
    if not isinstance(approval, str):
        return approval  # an ApprovalPolicy (anything with decide/remember)
    from ..tools import ApprovalPolicy

    return ApprovalPolicy.for_project(workspace, approval)  # type: ignore[arg-type]  # "always allow" persists per project


__all__ = ["Agent", "ApprovalRequested", "RunFinished", "RunResult", "RunUsage"]
