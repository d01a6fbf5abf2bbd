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
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..tools import Tool, ToolRegistry
from ..tools.base import as_tool
from ..tools.builtin.skills import SkillTool
from ..tools.recall import recall_output
from .checkpoints import (
    DEFAULT_MAX_FILE_SIZE,
    Checkpoint,
    Checkpointer,
    CheckpointStore,
    RewindConflict,
    RewindResult,
    Timeline,
    git_available,
    plan_rewind,
)
from .compaction import (
    Compaction,
    CompactionContext,
    CompactionLedger,
    CompactionState,
    Compactor,
    LedgerEntry,
    RecordingCompactor,
)
from .context import NestedMemory, ProjectContext, project_context
from .engines.base import Engine, EngineInfo
from .events import (
    ApprovalRequested,
    DroppedItem,
    Event,
    HistoryCompacted,
    Notice,
    PlanUpdated,
    RunFinished,
    RunStarted,
    RunUsage,
    StopReason,
)
from .execute import ApprovalCallback, ToolRuntime
from .hooks import FinishGate, as_hooks, pre_compact_hook, prompt_hook, session_start_hook
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
from .state import MODES, Mode, RunState
from .subagents import (
    BUILT_IN,
    MAIN,
    TASK_TOOL,
    AgentTool,
    AgentType,
    ChildLink,
    Parent,
    SubagentRun,
    TaskTool,
    agent_dirs,
    discover_agent_types,
    subagent_runs,
)
from .tracing import RunTrace, Tracing, default_tracing

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
    timeline: Timeline = field(default_factory=Timeline)  # checkpoint records, in log order
    rewinds: list[tuple[list[Message], dict[str, Any]]] = field(default_factory=list)
    checkpointer: Checkpointer | None = None
    mode: Mode = "default"  # the mode of the last run
    plan: str | None = None  # the plan written in plan mode (pinned when execution starts)
    nested_memory: NestedMemory | None = None  # AGENTS.md below the workspace, given once each
    started: bool = False  # its SessionStart hooks ran (its first run in this process)
    children: dict[str, int] = field(default_factory=dict)  # sub-agents started, per name


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
        tracing: Tracing | bool | None = None,
        mode: Mode = "default",
        memory: bool | Sequence[str | Path] = False,
        skills: bool | Sequence[str | Path] = False,
        checkpoints: bool = True,
        checkpoints_dir: str | Path | None = None,
        checkpoint_max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        hooks: Any = None,
        subagents: bool | Sequence[AgentType] = False,
        max_subagents: int = 4,
        subagent_depth: int = 1,
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
        # agent.hooks.Hooks, or its config ({EventName: [{matcher, hooks}]}, callables allowed).
        self.hooks = as_hooks(hooks)
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
        self.mode: Mode = _check_mode(mode)
        # The task tool (agent/subagents.py): True: the built-in agent types and the agent
        # files found (reload_context reads them again); a list: those types only.
        self._subagents = subagents
        if subagents is not False:
            if TASK_TOOL in names:
                raise ConfigError(f"A tool is named {TASK_TOOL!r}; that name is reserved.")
            types = BUILT_IN if subagents is True else tuple(subagents)  # type: ignore[arg-type]
            self.registry.add(
                TaskTool(types, max_concurrent=max_subagents, max_depth=subagent_depth)
            )
        # AGENTS.md memory and skills (agent/context.py): read now, fixed for the agent's life
        # (the system turn roots every cached prefix). reload_context() reads them again.
        self._memory, self._skills = memory, skills
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
        # Workspace snapshots before tool rounds that may change files (agent/checkpoints.py):
        # rewind restores them. Off without the git binary (a notice says so).
        self.checkpoints_enabled = checkpoints
        self._checkpoint_store: CheckpointStore | None = None
        self._checkpoints_dir = checkpoints_dir
        self._checkpoint_max_file_size = checkpoint_max_file_size
        self._conversations: dict[str, _Conversation] = {}
        self.project_context: ProjectContext = ProjectContext()
        self.reload_context()
        # OpenTelemetry spans and metrics of each run (agent.tracing.Tracing); None: the
        # default set by tracing.instrument_all (none unless set), False: off.
        self.tracing = tracing

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
        self._drop_models()  # built for the old engine: tokenizer, variant, live ids
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

    def add_tools(self, tools: Iterable[Tool | Callable[..., Any]]) -> list[Tool]:
        """Give the agent more tools (an MCP server trusted later) from each session's next
        request on. Their declarations are part of the system turn, so that request renders
        its prompt afresh (one full prefill). Refused (ConfigError) while a session is running
        or for a name already taken."""
        added = [as_tool(t) for t in tools]
        busy = [c.session_id for c in self._conversations.values() if c.busy]
        if busy:
            raise ConfigError(f"Session {busy[0]} is running: add tools when the run has ended.")
        names = [t.name for t in added]
        taken = sorted({n for n in names if n in self.registry or names.count(n) > 1})
        if taken:
            raise ConfigError(f"A tool named {', '.join(taken)} is there already; rename one.")
        for tool in added:
            self.registry.add(tool)
        self._drop_models()  # rebuilt: new declarations in the system turn
        return added

    def reload_context(self) -> ProjectContext:
        """Read the AGENTS.md memory and the skills again (after ``/init`` wrote a file, or
        an edit). Each session's next request renders its new system turn (one full prefill)."""
        context = project_context(self.workspace, memory=self._memory, skills=self._skills)
        task = self.registry.get(TASK_TOOL)
        if self._subagents is True and isinstance(task, TaskTool):
            types, problems = discover_agent_types(agent_dirs(self.workspace))
            task.set_types(types)
            context = dataclasses.replace(
                context,
                notices=(*context.notices, *problems),
                agent_types=tuple(types),
                agent_problems=tuple(problems),
            )
        tool = self.registry.get(SkillTool.name)
        if isinstance(tool, SkillTool):
            tool.set_skills(context.usable_skills)
        elif context.usable_skills and tool is None:
            self.registry.add(SkillTool(context.usable_skills))
        if context != self.project_context:
            self.project_context = context
            self._drop_models()  # rebuilt: new system text and declarations
        return context

    def _drop_models(self) -> None:
        """Every session's model layer is built afresh by its next request (the live prompt
        ids are forgotten: the next request renders the whole prompt)."""
        for conv in self._conversations.values():
            if conv.model is not None:
                conv.model.invalidate()
                conv.model = None

    async def aclose(self) -> None:
        """Close the session logs, the tools that hold resources (an ``aclose`` method:
        run_shell's background processes) and the engine if this agent built it (or
        close_engine=True)."""
        self._close_logs()
        for tool in list(self.registry):
            close = getattr(tool, "aclose", None)
            if close is not None:
                await close()
        if self._owns_engine and self._engine is not None:
            engine, self._engine = self._engine, None
            for conv in self._conversations.values():
                conv.model = None
            await engine.aclose()

    def _close_logs(self) -> None:
        for conv in self._conversations.values():
            if conv.log is not None:
                conv.log.close()

    async def __aenter__(self) -> Agent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- running -------------------------------------------------------------------------------

    def stream(
        self,
        task: str | Sequence[Any] | None = None,
        *,
        deps: Any = None,
        session_id: str | None = None,
        on_emit: Callable[[Event], None] | None = None,
        answers_approvals: bool = False,
        mode: Mode | None = None,
        allowed_tools: Sequence[str] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Run a task and yield its events; ends with `RunFinished`.

        Approvals: a call the approval policy asks about goes to ``on_approval`` (the agent's
        callback) if there is one; else, with ``answers_approvals=True``, the run waits until
        the consumer calls ``event.respond(...)`` on the `ApprovalRequested` event; else nobody
        can answer and the call is denied at once (the model reads why; a `Notice` says so).
        ``approval_timeout`` (the agent's) bounds every wait: no answer in time is a denial.

        Close the iterator (``async with contextlib.aclosing(...)``) or cancel the task that
        drives it to stop the run: tools are cancelled, the partial turn is kept.

        ``mode``: "plan" lets the model call only read-only tools and update_plan (enforced by
        the tool-call grammar; where the engine has no grammar, other calls are refused with a
        message the model reads). The next run in "default" mode starts with the plan pinned.
        None: the agent's ``mode``.

        ``allowed_tools``: the only tools this run may call (a custom command's
        ``allowed-tools``), enforced like plan mode: by the grammar, else refused with a
        message the model reads. Names that are no tool are ignored (a `Notice` says so).

        ``on_emit`` sees each event synchronously when the run produces it, before the run goes
        on (a consumer of the iterator sees it later): e.g. `ToolCallStarted` before the call
        runs, to read a file the call is about to change. Keep it quick; it must not raise.

        Sub-agents (the task tool, `as_tool`) report in this stream too: each event of a child
        comes wrapped in a `SubagentEvent` naming the child; a child's `ApprovalRequested`
        comes as it is (its ``agent`` names the child) and is answered like the run's own.
        """
        return self._events(
            task, deps=deps, session_id=session_id, on_emit=on_emit,
            answers_approvals=answers_approvals, mode=mode, allowed_tools=allowed_tools,
        )  # fmt: skip

    async def _events(
        self,
        task: str | Sequence[Any] | None = None,
        *,
        deps: Any = None,
        session_id: str | None = None,
        on_emit: Callable[[Event], None] | None = None,
        answers_approvals: bool = False,
        mode: Mode | None = None,
        allowed_tools: Sequence[str] | None = None,
        link: ChildLink | None = None,
    ) -> AsyncGenerator[Event, None]:
        """`stream`, and for a child run (``link``: its place under its parent) too."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        end = object()
        put: Callable[[object], None] = queue.put_nowait
        if on_emit is not None:
            tap = on_emit

            def put(event: object) -> None:
                tap(event)  # type: ignore[arg-type]
                queue.put_nowait(event)

        trace = self._trace()
        if trace is not None:  # a subscriber of the events; None (one check) when tracing is off
            emit = put

            def put(event: object) -> None:
                trace(event)
                emit(event)

        async def produce() -> None:
            try:
                await self._run(
                    task, deps, session_id, put, answers_approvals, mode, allowed_tools, link
                )
            except BaseException as e:
                if trace is not None:
                    trace.close(e)
                raise
            finally:
                if trace is not None:
                    trace.close()
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
        mode: Mode | None = None,
        allowed_tools: Sequence[str] | None = None,
    ) -> RunResult:
        """Drain `stream` into a `RunResult`; ``on_event`` sees every event (it may answer
        `ApprovalRequested` with ``event.respond(...)`` when ``answers_approvals=True``)."""
        started: RunStarted | None = None
        finished: RunFinished | None = None
        stream = self.stream(
            task, deps=deps, session_id=session_id, answers_approvals=answers_approvals, mode=mode,
            allowed_tools=allowed_tools,
        )  # fmt: skip
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
        mode: Mode | None = None,
    ) -> RunResult:
        """`run` in a fresh event loop. An engine the agent built is closed at the end.
        Nobody answers approvals here but ``on_approval``: without it, asked calls are denied."""

        async def main() -> RunResult:
            try:
                return await self.run(task, deps=deps, session_id=session_id, mode=mode)
            finally:
                if self._owns_engine:
                    await self.aclose()

        return asyncio.run(main())

    async def resume(
        self, session_id: str, task: str | Sequence[Any] | None = None, *, deps: Any = None
    ) -> RunResult:
        """Continue a session (from memory, or rebuilt from its log), optionally with a new task."""
        return await self.run(task, deps=deps, session_id=session_id)

    def as_tool(self, name: str = "agent", description: str | None = None) -> AgentTool:
        """This agent as a tool of another agent: each call runs it on the call's ``prompt``
        in a fresh session, and its final answer (text, or its ``output_type`` as JSON) is the
        result; a run that stops early is an error result. Its events reach the calling run's
        stream as `SubagentEvent`, its usage is added to that run's. It keeps its own engine,
        tools and settings (give it the parent's engine to share one)."""
        text = description or (
            f"Ask the {name} agent to do a task; it answers with a report. "
            + (self.instructions or "").strip()[:300]
        )
        return AgentTool(self, name=name, description=text.strip())

    def new_session(self) -> str:
        """Start an empty session now and return its id (its log is written with its first
        record: a session never run leaves no file). A run with ``session_id=`` this id is its
        first; until then it holds nothing.
        For faces that must name a session before its first task (an editor's session/new)."""
        conv, _ = self._open(None, [])
        self.session_id = conv.session_id
        return conv.session_id

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

    def subagent_runs(self, session_id: str | None = None) -> list[SubagentRun]:
        """The sub-agents a saved session ran (default: the current one), with their
        transcripts: what a resumed face shows inside each task call's card."""
        sid = session_id or self.session_id
        if sid is None:
            raise ConfigError("No session yet: run a task first (or pass session_id=).")
        return subagent_runs(self.sessions_dir, sid)

    def session_model(self, session_id: str) -> tuple[str, str | None] | None:
        """The model (and variant) a saved session last ran on; None when unknown."""
        return saved_model(session_path(self.sessions_dir, session_id))

    def history(self, session_id: str | None = None) -> list[Message]:
        """The messages of a session held in memory (default: the current one); [] if none."""
        conv = self._conversations.get(session_id or self.session_id or "")
        return list(conv.history) if conv else []

    # -- compaction ----------------------------------------------------------------------------

    async def compact(
        self,
        focus: str | None = None,
        *,
        session_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> HistoryCompacted | None:
        """Compact a session's history now (between runs); returns what was done.
        PreCompact hooks run first (``trigger: "manual"``): they may add to the focus, or
        block (ConfigError with their reason); ``on_event`` sees their `HookRan` events."""
        conv = self._conversation(session_id)
        if self.compactor is None:
            raise ConfigError("Compaction is off (compactor=None).")
        if conv.busy:
            raise ConfigError("The session is running; compaction happens between its steps.")
        model = await self._model_for(conv)
        state = self._state(conv, model, lambda _e: None, None)
        if self.hooks:
            focus, blocked = await pre_compact_hook(
                self.hooks, session_id=conv.session_id, cwd=self.workspace, trigger="manual",
                focus=focus, step=0, emit=on_event or (lambda _e: None),
            )  # fmt: skip
            if blocked is not None:
                raise ConfigError(f"A PreCompact hook blocked the compaction: {blocked}")
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

    # -- checkpoints and rewind ----------------------------------------------------------------

    def checkpoint_store(self) -> CheckpointStore:
        """The workspace's shadow repository (ConfigError when checkpoints are off)."""
        if not self.checkpoints_enabled:
            raise ConfigError("Checkpoints are off for this agent (checkpoints=False).")
        if not git_available():
            raise ConfigError("Checkpoints need the git binary: install git.")
        if self._checkpoint_store is None:
            self._checkpoint_store = CheckpointStore(
                self.workspace,
                root=self._checkpoints_dir,
                max_file_size=self._checkpoint_max_file_size,
                exclude=[self.sessions_dir],
            )
        return self._checkpoint_store

    async def checkpoints(self, session_id: str | None = None) -> list[Checkpoint]:
        """The points of a session one can rewind to (each user message, each tool round that
        changed files), oldest first, each with what a code rewind to it would change now.
        Loads a saved session from its log if needed. Between runs."""
        conv = self._between_runs(session_id)
        store = self.checkpoint_store()
        points = self._points(conv)

        def annotate() -> list[Checkpoint]:
            now = store.snapshot("now").commit
            out = []
            for p in points:
                changes: tuple[Any, ...] = ()
                if p.commit is not None:
                    restore, _ = plan_rewind(
                        store, conv.timeline, p.commit, conv.timeline.position(p), now
                    )
                    changes = tuple(store.changes(p.commit, now, restore))
                out.append(dataclasses.replace(p, changes=changes))
            return out

        return await asyncio.to_thread(annotate)

    async def rewind(
        self,
        session_id: str | None = None,
        *,
        to: int | str | Checkpoint,
        code: bool = True,
        conversation: bool = True,
        force: bool = False,
        dry_run: bool = False,
    ) -> RewindResult:
        """Go back to a point of `checkpoints` (its index, anchor id, or the point itself).

        ``code``: the files the agent changed since then get their content and mode back,
        files it created are removed, files it deleted come back. Files someone else also
        changed since then raise `RewindConflict` (nothing is changed) unless ``force``.
        ``conversation``: the history is cut back to just before the point (a user message
        point: before that message; its text is in ``prompt``). The log keeps everything: a
        ``rewind`` record is appended, and `undo_rewind` takes it back. ``dry_run``: only say
        what would happen (conflicts listed, not raised).
        """
        if not (code or conversation):
            raise ConfigError("Nothing to rewind: choose code, conversation or both.")
        conv = self._between_runs(session_id)
        point = _find_point(self._points(conv), to)
        keep = next((i for i, m in enumerate(conv.history) if m.id == point.anchor), None)
        if conversation and keep is None:
            raise ConfigError(f"Checkpoint {point.index} is no longer in the conversation.")
        prompt = None
        if point.kind == "message" and keep is not None:
            prompt = str(getattr(conv.history[keep], "content", "")) or None
        dropped = len(conv.history) - keep if conversation and keep is not None else 0
        record: dict[str, Any] = {
            "type": "rewind", "to": point.anchor, "index": point.index, "code": code,
            "conversation": conversation, "keep": keep, "time": time.time(),
        }  # fmt: skip
        result = RewindResult(point, code, conversation, (), (), dropped, "", dry_run, None, prompt)
        if code and point.commit is not None:
            store = self.checkpoint_store()
            position = conv.timeline.position(point)
            result, after = await asyncio.to_thread(
                _rewind_code, store, conv.timeline, point.commit, position, force, dry_run, result
            )
            record["before"], record["after"] = result.undo_commit, after
        if dry_run:
            return result
        conv.timeline.records.append(record)
        if conv.log is not None:
            conv.log.write(record, sync=True)
        if conversation and keep is not None:
            conv.rewinds.append((list(conv.history), record))
            del conv.history[keep:]
            if conv.model is not None:
                conv.model.invalidate()
        return result

    async def undo_rewind(self, session_id: str | None = None, *, force: bool = False) -> None:
        """Take back the session's last rewind not yet undone: the files it restored get the
        content they had before it (files changed since by someone else raise
        `RewindConflict` unless ``force``), and the conversation its messages back. Only
        while nothing ran since; called again, it takes back the rewind before (a stack)."""
        conv = self._between_runs(session_id)
        records = conv.timeline.records
        position, undone = None, 0
        for i in range(len(records) - 1, -1, -1):
            kind = records[i].get("type")
            if kind == "rewind_undo":
                undone += 1
            elif kind == "rewind" and undone:
                undone -= 1
            elif kind != "user":
                position = i if kind == "rewind" else None
                break
        rec = records[position] if position is not None else {}
        if position is None:
            raise ConfigError("Nothing to undo: the session's last change is not a rewind.")
        if rec.get("conversation") and len(conv.history) != rec.get("keep"):
            raise ConfigError("Messages were added since the rewind: rewind again instead.")
        undo: dict[str, Any] = {"type": "rewind_undo", "conversation": rec.get("conversation"),
                                "time": time.time()}  # fmt: skip
        if rec.get("before"):
            store = self.checkpoint_store()
            point = Checkpoint(0, "round", "", "undo", str(rec["before"]))
            blank = RewindResult(point, True, False, (), (), 0, "")
            done, after = await asyncio.to_thread(
                _rewind_code, store, conv.timeline, str(rec["before"]), position, force, False,
                blank,
            )  # fmt: skip
            undo["before"], undo["after"] = done.undo_commit, after
        conv.timeline.records.append(undo)
        if conv.log is not None:
            conv.log.write(undo, sync=True)
        if rec.get("conversation") and conv.rewinds:
            conv.history[:] = conv.rewinds.pop()[0]
            if conv.model is not None:
                conv.model.invalidate()

    def _points(self, conv: _Conversation) -> list[Checkpoint]:
        titles: dict[str, str] = {}
        for m in conv.history:
            if isinstance(m, UserMessage):
                titles[m.id] = " ".join(str(m.content).split())[:80]
        return conv.timeline.points([m.id for m in conv.history], titles)

    def _between_runs(self, session_id: str | None) -> _Conversation:
        sid = session_id or self.session_id
        if sid is None:
            raise ConfigError("No session yet: run a task first (or pass session_id=).")
        conv = self._conversations.get(sid) or self._open(sid, [])[0]
        if conv.busy:
            raise ConfigError(f"Session {conv.session_id} is running: rewind when it has ended.")
        return conv

    def _checkpointer(self, conv: _Conversation) -> Checkpointer | None:
        if not self.checkpoints_enabled:
            return None
        if conv.checkpointer is None:
            try:
                conv.checkpointer = Checkpointer(self.checkpoint_store(), conv.timeline)
            except ConfigError:
                return None
        return conv.checkpointer

    # -- internals -----------------------------------------------------------------------------

    def _trace(self) -> RunTrace | None:
        tracing = self.tracing if self.tracing is not None else default_tracing()
        if not tracing:
            return None
        if tracing is True:
            tracing = self.tracing = Tracing()
        return tracing.run_trace(self._provider_name)

    def _provider_name(self) -> str:
        name = type(self._engine).__name__ if self._engine is not None else ""
        return {"VLLMEngine": "vllm", "OpenAIHTTPEngine": "vllm", "ScriptedEngine": "scripted"}.get(
            name, name
        )

    def _conversation(self, session_id: str | None) -> _Conversation:
        sid = session_id or self.session_id
        if sid is None or sid not in self._conversations:
            raise ConfigError("No session yet: run a task first (or pass session_id=).")
        return self._conversations[sid]

    def _open(
        self, session_id: str | None, notices: list[Notice], link: ChildLink | None = None
    ) -> tuple[_Conversation, bool]:
        """The conversation to run in, and whether it continues an earlier one. A child's new
        session (``link``) names its parent in its log's header."""
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
                    **_child_meta(link),
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
            conv.timeline = Timeline(saved.timeline)
            conv.rewinds = saved.rewinds
            conv.mode, conv.plan = _saved_mode(saved.history, saved.events)
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
                instructions=self.project_context.system_text(self.instructions),
                thinking=self.thinking,
                max_output_tokens=self.max_output_tokens,
                media=_media_loader,
                routing_key=conv.session_id,  # replicas keep the session's prefix cache hot
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
            hooks=self.hooks,
            session_id=conv.session_id,
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
            checkpoints=self._checkpointer(conv),
        )

    async def _run(
        self,
        task: Any,
        deps: Any,
        session_id: str | None,
        put: Callable[[object], None],
        answers_approvals: bool = False,
        mode: Mode | None = None,
        allowed_tools: Sequence[str] | None = None,
        link: ChildLink | None = None,
    ) -> None:
        mode = self.mode if mode is None else _check_mode(mode)
        notices: list[Notice] = [Notice(n, "warning") for n in self.project_context.notices]
        allowed = self._allowed(allowed_tools, notices)
        conv, resumed = self._open(session_id, notices, link)
        if conv.nested_memory is None and self._memory is True:
            conv.nested_memory = NestedMemory(self.workspace)
        if conv.busy:
            raise ConfigError(f"Session {conv.session_id} is already running.")
        gate = FinishGate(put) if self.hooks else None  # Notification hooks before RunFinished
        if gate is not None:
            put = gate
        conv.busy = True
        try:
            model = await self._model_for(conv)
            state = self._state(conv, model, _plan_tap(put, conv), deps, answers_approvals)
            state.mode = mode
            state.allowed_tools = allowed
            state.nested_memory = conv.nested_memory
            state.tools.agent_path = link.path if link is not None else ""
            state.tools.parent = Parent(
                self, state, link.path if link else MAIN, link.depth if link else 0,
                answers_approvals, conv.session_id, conv.children,
            )  # fmt: skip
            self.session_id = conv.session_id
            text = ""
            started = ""  # what SessionStart hooks add (with the first task)
            if self.hooks and not conv.started and link is None:
                started = await session_start_hook(
                    self.hooks, session_id=conv.session_id, cwd=self.workspace,
                    source="resume" if conv.history else "startup", events=notices,
                )  # fmt: skip
            conv.started = True
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
                if self.hooks and link is None:  # UserPromptSubmit: block, or add context
                    text = await prompt_hook(
                        self.hooks, session_id=conv.session_id, cwd=self.workspace, prompt=text,
                        notices=notices,
                    )  # fmt: skip
                if started:
                    text = f"{text}\n\n<session-start-context>\n{started}\n</session-start-context>"
                state.add_task(UserMessage(content=text, attachments=attachments))
            info = model.engine.info
            state.emit(
                RunStarted(conv.session_id, text, info.model, resumed=resumed, variant=info.variant)
            )
            for notice in notices:
                state.emit(notice)
            _announce_mode(state, conv, mode, task is not None)
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
            if gate is not None:  # RunFinished, after the Notification hooks of a failed run
                await gate.release(self.hooks, session_id=conv.session_id, cwd=self.workspace)

    def _allowed(self, names: Sequence[str] | None, notices: list[Notice]) -> frozenset[str] | None:
        """A run's ``allowed_tools`` as the names of real tools (others: a warning)."""
        if names is None:
            return None
        if isinstance(names, str):
            raise ConfigError(f"allowed_tools= takes a list of tool names: [{names!r}]")
        unknown = [n for n in names if n not in self.registry]
        if unknown:
            text = f"allowed-tools: no tool named {', '.join(unknown)} here (ignored)"
            notices.append(Notice(text, "warning"))
        return frozenset(n for n in names if n in self.registry)


def _child_meta(link: ChildLink | None) -> dict[str, str]:
    """What a child session's log header says of its parent."""
    if link is None:
        return {}
    return {"parent": link.parent_session, "agent": link.path, "call_id": link.call_id}


def _check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: use one of {', '.join(MODES)}.")
    return mode  # type: ignore[return-value]


PLAN_MODE_NOTE = (
    "Plan mode: study the task and write a plan; change nothing yet. Only read-only tools and "
    "update_plan can be called. Write the plan with update_plan, then answer with a short "
    "summary of it; the user accepts it before it is carried out."
)


def _announce_mode(state: RunState, conv: _Conversation, mode: Mode, new_task: bool) -> None:
    """Say the mode in an appended message (the system turn and the declarations stay the
    same: the cached prefix stays hot). Leaving plan mode pins the accepted plan."""
    if mode == "plan" and (conv.mode != "plan" or new_task):
        conv.plan = None
        state.add_note(PLAN_MODE_NOTE, "Plan mode: read-only tools and update_plan only.")
    elif mode == "default" and conv.mode == "plan":
        plan = conv.plan or _last_answer(conv.history) or "(no plan was written)"
        state.add_note(
            f"{PLAN_OVER} Carry it out now; every tool is available again. The accepted "
            f"plan:\n{plan}",
            "Plan accepted: executing it with every tool.",
        )
    conv.mode = mode


PLAN_OVER = "Plan mode is over: the user accepted the plan."


def _saved_mode(
    history: Sequence[Message], events: Sequence[dict[str, Any]]
) -> tuple[Mode, str | None]:
    """A resumed session's mode (its last mode note says it) and its latest plan, as a run
    in this process would have left them: leaving plan mode after a restart pins the plan."""
    mode: Mode = "default"
    for m in reversed(history):
        text = str(m.content) if isinstance(m, UserMessage) else ""
        if text.startswith(f"[agent] {PLAN_MODE_NOTE}") or text.startswith(f"[agent] {PLAN_OVER}"):
            mode = "plan" if text.startswith(f"[agent] {PLAN_MODE_NOTE}") else "default"
            break
    plans = [e for e in events if e.get("kind") == "plan_updated"]
    items = (
        [(i.get("text", ""), i.get("status", "pending")) for i in plans[-1]["items"]]
        if plans
        else []
    )
    return mode, _plan_text(items)


def _plan_text(items: Sequence[tuple[str, str]]) -> str | None:
    marks = {"pending": "[ ]", "in_progress": "[>]", "done": "[x]", "cancelled": "[-]"}
    lines = [f"{i}. {marks.get(status, '[ ]')} {text}" for i, (text, status) in enumerate(items, 1)]
    return "\n".join(lines) or None


def _last_answer(history: Sequence[Message]) -> str | None:
    for m in reversed(history):
        if isinstance(m, ModelTurn) and m.text.strip():
            return m.text.strip()
    return None


def _plan_tap(put: Callable[[object], None], conv: _Conversation) -> Callable[[object], None]:
    """Keeps the latest plan (update_plan) of the conversation, to pin it after plan mode."""

    def tap(event: object) -> None:
        if isinstance(event, PlanUpdated):
            conv.plan = _plan_text([(p.text, p.status) for p in event.items])
        put(event)

    return tap


def _find_point(points: list[Checkpoint], to: int | str | Checkpoint) -> Checkpoint:
    if isinstance(to, Checkpoint):
        to = to.anchor
    for p in points:
        if p.index == to or p.anchor == to:
            return p
    have = f"1..{len(points)}" if points else "none yet"
    raise ConfigError(f"No checkpoint {to!r} in this session (checkpoints: {have}).")


def _rewind_code(
    store: CheckpointStore,
    timeline: Timeline,
    target: str,
    position: int,
    force: bool,
    dry_run: bool,
    result: RewindResult,
) -> tuple[RewindResult, str | None]:
    """Snapshot now, plan, check conflicts, restore (in a thread: git runs). Returns what was
    done and the snapshot after it (None for a dry run)."""
    now = store.snapshot("before rewind").commit
    restore, conflicts = plan_rewind(store, timeline, target, position, now)
    if conflicts and not force and not dry_run:
        raise RewindConflict(
            f"{len(conflicts)} file(s) changed outside the agent since that checkpoint: "
            + ", ".join(sorted(conflicts)[:10])
            + ". Nothing was changed; rewind with force to overwrite them (undo brings them back).",
            sorted(conflicts),
        )
    changes = tuple(store.changes(target, now, restore))
    diff = store.diff_text(target, now, restore)
    after = None
    if not dry_run:
        store.restore(target, restore)
        after = store.snapshot("after rewind").commit
    done = dataclasses.replace(
        result, changes=changes, conflicts=tuple(sorted(conflicts)), diff=diff,
        undo_commit=None if dry_run else now,
    )  # fmt: skip
    return done, after


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
