"""Sub-agents: agents that run as tools of another agent, on the same engine.

`Agent.as_tool` makes any agent a tool of another. ``Agent(subagents=True)`` adds the ``task``
tool, which runs agent types: the built-in ``explore`` (the parent's read-only tools, a short
report) and ``general`` (the parent's tools and approval policy), and custom ones from Markdown
files in ``.gemma-agent/agents/`` and ``~/.config/gemma-agent/agents/`` (front matter ``name``,
``description``, ``tools``, ``thinking``, ``max_steps``, ``max_tokens``, ``time_limit``; the
body is the agent's instructions, the format Claude Code's agent files use).

Each call runs a child: a fresh session (its own history and limits) on the parent's engine and
workspace. Several calls in one turn run concurrently — the engine batches them, and after the
first child the shared system turn of a type comes from the prefix cache. The child's events
reach the parent's stream wrapped in `SubagentEvent` with its path (``main/explore#2``); its
approval requests reach it as they are, saying who asks. Its final answer is the call's
result; a child that stops early is an error result. Its usage is added to the parent's run
and recorded per child in the parent's session log, which links the child's log
(``<parent session>.agents/<child session>.jsonl``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..errors import ConfigError
from ..tools import ToolContext, ToolError, ToolRegistry
from ..tools.approval import Decision, default_config_dir
from ..tools.base import Tool
from ..tools.builtin.skills import SkillTool, parse_front_matter
from ..tools.commands import read_only_command
from .events import ApprovalRequested, Event, RunFinished, RunStarted, SubagentEvent
from .messages import Message
from .session import SessionState, child_sessions_dir, load_session, session_path

if TYPE_CHECKING:
    from .agent import Agent
    from .state import RunState

TASK_TOOL = "task"
MAIN = "main"  # the path of a top-level run
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class AgentType:
    """A kind of sub-agent the ``task`` tool can start."""

    name: str
    description: str  # for the parent model: when to use it
    instructions: str  # the child's system instructions
    tools: tuple[str, ...] | None = None  # None: the parent's tools; else these of them
    read_only: bool = False  # only the parent's read-only tools
    thinking: bool | None = None  # None: as the parent
    max_steps: int = 30
    max_tokens: int | None = None
    time_limit: float | None = None  # seconds
    source: str = "built-in"  # the file it was read from


EXPLORE = AgentType(
    "explore",
    "Read-only: searches and reads the codebase to answer a question (where is X, how does Y "
    "work) and reports briefly. Several can search different places at once.",
    "You are an explorer working for another agent. Search and read the workspace to answer "
    "the task; you cannot change anything. Be quick: look only where the task points. Finish "
    "with a short report: the answer, and the files (with line numbers) it rests on. Your "
    "report is all the other agent sees.",
    read_only=True,
    max_steps=20,
)
GENERAL = AgentType(
    "general",
    "Does a self-contained task with all the tools (changes files, runs commands) and "
    "reports what it did.",
    "You are a sub-agent doing one task for another agent, in the same workspace. Do the task "
    "with your tools, check the result, then finish with a concise report of what you did "
    "and found. Your report is all the other agent sees.",
)
BUILT_IN = (EXPLORE, GENERAL)


def agent_dirs(workspace: Path, config_dir: Path | None = None) -> list[Path]:
    """Where agent files are read from, project first (it wins over a user file)."""
    config = config_dir if config_dir is not None else default_config_dir()
    return [workspace.resolve() / ".gemma-agent" / "agents", config / "agents"]


def load_agent_type(path: Path) -> AgentType:
    """Read one agent file; ValueError says what is wrong with it."""
    try:
        meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read it: {e}") from None
    name = meta.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name {name!r}: use letters, digits, '-' or '_' (at most 40)")
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("the front matter has no 'description' (when to use this agent)")
    if not body.strip():
        raise ValueError("no instructions after the front matter")
    tools = meta.get("tools")
    if isinstance(tools, str):  # Claude Code writes "Read, Grep, Glob"
        tools = [t.strip() for t in tools.split(",") if t.strip()]
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, str) for t in tools)
    ):
        raise ValueError("tools: give a list of tool names, or names separated by commas")
    thinking = meta.get("thinking")
    if thinking is not None and not isinstance(thinking, bool):
        raise ValueError(f"thinking: {thinking!r} is not true or false")
    limits: dict[str, Any] = {}
    for key, kind in (("max_steps", int), ("max_tokens", int), ("time_limit", float)):
        value = meta.get(key, meta.get(key.replace("_", "-")))
        if value is None:
            continue
        try:
            limits[key] = kind(value)
        except ValueError:
            raise ValueError(f"{key}: {value!r} is not a number") from None
        if limits[key] <= 0:
            raise ValueError(f"{key}: give a number above 0")
    return AgentType(
        name,
        " ".join(description.split()),
        body.strip(),
        tools=tuple(tools) if tools is not None else None,
        thinking=thinking,
        source=str(path),
        **limits,
    )


def discover_agent_types(folders: Sequence[Path]) -> tuple[list[AgentType], list[str]]:
    """The built-in types and each ``FOLDER/*.md``; a type of a name found earlier in the
    folders (or in a later one) is overridden by the earlier folder's. Malformed files are
    left out with a warning."""
    found: dict[str, AgentType] = {}
    problems: list[str] = []
    for folder in reversed([f.expanduser() for f in folders]):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.md")):
            try:
                kind = load_agent_type(path)
            except ValueError as e:
                problems.append(f"agent file {path}: {e} (left out)")
                continue
            found[kind.name] = kind
    types = {t.name: t for t in BUILT_IN} | found
    return list(types.values()), problems


@dataclass
class Parent:
    """What a run hands the tools that run agents (``ToolContext.parent``)."""

    agent: Agent
    state: RunState
    path: str  # MAIN, or a child's own path
    depth: int  # 0 for a top-level run
    answers_approvals: bool  # the stream's consumer answers approval requests
    session_id: str
    started: dict[str, int] = field(default_factory=dict)  # children per name (labels)

    def label(self, name: str) -> str:
        self.started[name] = self.started.get(name, 0) + 1
        return f"{self.path}/{name}#{self.started[name]}"

    def adopt(
        self, path: str, call_id: str, finished: RunFinished, session_id: str, log: Path | None
    ) -> None:
        """Add a finished child's usage to this run and link its log from this one's."""
        usage, child = self.state.usage, finished.usage
        if child is not None:
            for f in dataclasses.fields(usage):
                setattr(usage, f.name, getattr(usage, f.name) + getattr(child, f.name))
        if self.state.log is not None:
            self.state.log.write(
                {
                    "type": "subagent",
                    "call_id": call_id,
                    "agent": path,
                    "session_id": session_id,
                    "log": str(log) if log is not None else None,
                    "reason": finished.reason,
                    "steps": finished.steps,
                    "usage": dataclasses.asdict(child) if child is not None else {},
                }
            )


@dataclass(frozen=True)
class SubagentRun:
    """A sub-agent a saved session's tool call ran: its place, outcome and transcript."""

    call_id: str  # the parent's tool call
    agent: str  # its path, e.g. "main/explore#1"
    session_id: str
    reason: str  # how it stopped (a StopReason)
    steps: int
    usage: dict[str, int]
    history: list[Message]  # [] when its log is gone
    log: Path


def subagent_runs(sessions_dir: Path, session_id: str) -> list[SubagentRun]:
    """The sub-agents of a saved session, each followed by its own (``Agent.subagent_runs``),
    in the order they finished."""
    log = session_path(sessions_dir, session_id)
    return _runs(log, load_session(log))


def _runs(log: Path, saved: SessionState) -> list[SubagentRun]:
    folder = child_sessions_dir(log.parent, log.stem)
    out = []
    for link in saved.children:
        child = str(link.get("session_id") or "")
        path = Path(link["log"]) if link.get("log") else folder / f"{child}.jsonl"
        try:
            state: SessionState | None = load_session(path) if child else None
        except ConfigError:
            state = None  # a missing or corrupt child log does not hide its parent's
        history = state.history if state is not None else []
        usage = {k: int(v) for k, v in (link.get("usage") or {}).items() if isinstance(v, int)}
        out.append(
            SubagentRun(
                str(link.get("call_id", "")),
                str(link.get("agent", "")),
                child,
                str(link.get("reason", "")),
                int(link.get("steps") or 0),
                usage,
                history,
                path,
            )
        )
        if state is not None:
            out += _runs(path, state)
    return out


@dataclass(frozen=True)
class ChildLink:
    """How a child run knows its place: path, depth, and the parent's session and call."""

    path: str
    depth: int
    parent_session: str = ""
    call_id: str = ""


async def run_child(agent: Agent, prompt: str, *, name: str, ctx: ToolContext[Any]) -> Any:
    """Run ``agent`` on ``prompt`` as a child of the run that made the call ``ctx`` is for:
    its events go into that run's stream; its final answer (text or typed output) is returned.
    Raises ToolError when the child stops before a final answer."""
    parent: Parent | None = ctx.parent
    if parent is not None:
        path = parent.label(name)
        link = ChildLink(path, parent.depth + 1, parent.session_id, ctx.call_id)
        answers = parent.answers_approvals
    else:  # called outside an agent's run (a registry used directly)
        path, answers = f"{MAIN}/{name}", False
        link = ChildLink(path, 1, "", ctx.call_id)
    finished: RunFinished | None = None
    session_id = ""
    mode = parent.state.mode if parent is not None else None  # plan mode: children plan too

    def forward(event: Event) -> None:
        # As the child emits, not as its stream is read: a face's tap sees ToolCallStarted
        # before the call runs (to read the file it is about to change).
        if isinstance(event, ApprovalRequested | SubagentEvent):
            ctx.emit(event)  # a request to answer, or a grandchild's (already tagged)
        else:
            ctx.emit(SubagentEvent(path, ctx.call_id, event))

    events = agent._events(prompt, answers_approvals=answers, mode=mode, on_emit=forward, link=link)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, RunStarted):
                session_id = event.session_id
            elif isinstance(event, RunFinished):
                finished = event
    assert finished is not None, "a run ends with RunFinished"
    if parent is not None:
        log = agent.session_file(session_id) if agent.persist and session_id else None
        parent.adopt(path, ctx.call_id, finished, session_id, log)
    if finished.reason != "final_answer":
        said = _last_text(agent, session_id)
        raise ToolError(
            f"The sub-agent {path} did not finish: {finished.error or finished.reason}."
            + (f" Its last words: {said}" if said else "")
        )
    output = finished.output
    return output.model_dump(mode="json") if isinstance(output, BaseModel) else output


def _last_text(agent: Agent, session_id: str, limit: int = 1500) -> str:
    for message in reversed(agent.history(session_id)):
        text = getattr(message, "text", "")
        if message.role == "model" and text.strip():
            return text.strip()[:limit]
    return ""


class AgentTool(Tool):
    """An agent as a tool of another (`Agent.as_tool`): each call is a fresh child session."""

    timeout = 24 * 3600.0  # the child's own limits (steps, tokens, time) bound it
    delegates = True

    def __init__(self, agent: Agent, *, name: str, description: str) -> None:
        parameters = {
            "type": "object",
            "properties": {
                "prompt": {
                    "type": "string",
                    "description": "The task, with everything needed to do it: the agent "
                    "sees nothing of this conversation.",
                }
            },
            "required": ["prompt"],
        }
        super().__init__(name=name, description=description, parameters=parameters)
        self.agent = agent

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        return await run_child(self.agent, args["prompt"], name=self.name, ctx=ctx)


class TaskTool(Tool):
    """Runs an agent type on a task (``Agent(subagents=True)``)."""

    name = TASK_TOOL
    timeout = 24 * 3600.0  # each child's own limits bound it
    delegates = True

    def __init__(
        self, types: Sequence[AgentType], *, max_concurrent: int = 4, max_depth: int = 1
    ) -> None:
        if max_concurrent < 1 or max_depth < 1:
            raise ValueError("TaskTool: max_concurrent and max_depth must be at least 1")
        self.max_concurrent = max_concurrent
        self.max_depth = max_depth  # 1: children cannot start children
        self._running = 0
        self._waiting: list[Any] = []
        super().__init__()
        self.set_types(types)

    def set_types(self, types: Sequence[AgentType]) -> None:
        if not types:
            raise ValueError("TaskTool: give at least one agent type")
        self.types = {t.name: t for t in types}
        listed = "\n".join(f"- {t.name}: {t.description}" for t in types)
        self.description = (
            "Hand a task to a sub-agent. It works in a fresh context with its own tools and "
            "answers with a report; you see only the report, so the prompt must say everything "
            "it needs. Calls in the same turn run at the same time: start independent "
            f"searches together. Agent types:\n{listed}"
        )
        self.parameters = {
            "type": "object",
            "properties": {
                "description": {
                    "type": "string",
                    "description": "What the sub-agent does, in 3 to 6 words (shown to the user).",
                },
                "prompt": {
                    "type": "string",
                    "description": "The task, with all the context the sub-agent needs.",
                },
                "agent_type": {"type": "string", "enum": list(self.types)},
            },
            "required": ["description", "prompt", "agent_type"],
        }

    def reads_only(self, arguments: Any) -> bool:
        name = arguments.get("agent_type") if isinstance(arguments, dict) else None
        kind = self.types.get(name) if isinstance(name, str) else None
        return kind is not None and kind.read_only

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        parent: Parent | None = ctx.parent
        if parent is None:
            raise ToolError("the task tool runs only inside an agent's run")
        kind = self.types.get(args["agent_type"])
        if kind is None:
            raise ToolError(
                f"No agent type {args['agent_type']!r}; use one of {', '.join(self.types)}"
            )
        if parent.depth >= self.max_depth:
            raise ToolError("sub-agents cannot start sub-agents here; do the task yourself")
        child = child_agent(parent, kind, self)
        try:
            async with self._slot():
                return await run_child(child, args["prompt"], name=kind.name, ctx=ctx)
        finally:
            child._close_logs()  # its tools and engine are the parent's: they stay open

    @contextlib.asynccontextmanager
    async def _slot(self) -> Any:
        """At most ``max_concurrent`` children at once (of every run using this tool). Not an
        asyncio.Semaphore: that binds to the first event loop it waits in (run_sync twice)."""
        while self._running >= self.max_concurrent:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            if self._waiting and not self._waiting[0].done():
                self._waiting[0].set_result(None)


class ReadOnlyPolicy:
    """A read-only agent's approvals: a shell command runs only if it is known to change
    nothing (``ls``, ``grep``, ``git log``; tools.commands.read_only_command); everything else
    is decided by the parent's policy (None: allowed)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def decide(self, tool: Tool, arguments: Any) -> Decision:
        if tool.shell_argument is not None:
            command = arguments.get(tool.shell_argument) if isinstance(arguments, dict) else None
            if not (isinstance(command, str) and read_only_command(command)):
                return Decision(
                    "deny",
                    "this agent is read-only: only commands known to change nothing run here "
                    "(ls, cat, grep, find without -exec, git log/diff/show, ...), without "
                    "redirects to files",
                )
        if self.inner is None:
            return Decision("allow", "read-only agent")
        decision: Decision = self.inner.decide(tool, arguments)
        return decision

    def remember(self, tool: Tool, arguments: Any) -> None:
        if self.inner is not None:
            self.inner.remember(tool, arguments)


def child_agent(parent: Parent, kind: AgentType, task: TaskTool) -> Agent:
    """An agent for one child of ``kind``: the parent's engine, workspace, approvals and hooks;
    the parent's tools it may use; the type's instructions and limits. Its session log goes
    next to the parent's, in ``<parent session>.agents/``."""
    from .agent import Agent

    a = parent.agent
    tools = [t for t in a.registry if t.name not in (SkillTool.name, TASK_TOOL)]
    policy = a.policy
    if kind.read_only:  # shell commands too, when they are known to change nothing
        tools = [t for t in tools if t.read_only or t.shell_argument is not None]
        policy = ReadOnlyPolicy(policy)
    if kind.tools is not None:
        tools = [t for t in tools if t.name in kind.tools]
    if parent.depth + 1 < task.max_depth:
        tools.append(task)
    registry = ToolRegistry(
        tools,
        default_timeout=a.registry.default_timeout,
        max_output_chars=a.registry.max_output_chars,
    )
    names = registry.names()
    choice = a.tool_choice if a.tool_choice == "required" or a.tool_choice in names else "auto"
    return Agent(
        engine=parent.state.model.engine,
        tools=registry,
        instructions=kind.instructions,
        workspace=a.workspace,
        thinking=a.thinking if kind.thinking is None else kind.thinking,
        thinking_budget=a.thinking_budget,
        tool_choice=choice,
        approval=policy,
        on_approval=a.on_approval,
        approval_timeout=a.approval_timeout,
        max_steps=kind.max_steps,
        max_tokens=kind.max_tokens,
        time_limit=kind.time_limit,
        max_consecutive_errors=a.limits.max_consecutive_errors,
        max_redecodes=a.limits.max_redecodes,
        loop_nudge_after=a.limits.loop_nudge_after,
        loop_stop_after=a.limits.loop_stop_after,
        compactor=a.compactor,
        sessions_dir=child_sessions_dir(a.sessions_dir, parent.session_id),
        max_output_tokens=a.max_output_tokens,
        persist=a.persist,
        fsync=a.fsync,
        temperature=a.sampling["temperature"],
        seed=a.sampling["seed"],  # type: ignore[arg-type]
        media_limits=a.media_limits,
        tracing=a.tracing,
        memory=a._memory,
        checkpoints=False,  # the parent's checkpoint of the round covers what a child changes
        hooks=a.hooks,
    )


__all__ = [
    "BUILT_IN",
    "EXPLORE",
    "GENERAL",
    "AgentTool",
    "AgentType",
    "ChildLink",
    "Parent",
    "ReadOnlyPolicy",
    "SubagentRun",
    "TaskTool",
    "agent_dirs",
    "discover_agent_types",
    "load_agent_type",
    "run_child",
    "subagent_runs",
]
