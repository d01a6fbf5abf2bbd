"""Persistent sessions: an append-only JSONL log per session, and resume.

One file per session, ``<sessions_dir>/<session_id>.jsonl``; one JSON object per line with a
``type``:

- ``meta``            first line: session id, creation time, model, workspace, format version
- ``message``         a message appended to the history (user message, finished model turn)
- ``turn_pending``    a model turn whose tool calls are running (no results yet)
- ``tool_result``     one finished tool call of the pending turn (written as soon as it ends)
- ``compaction``      the history was replaced by a compactor (``history`` + its ``event``)
- ``undo_compaction`` the last compaction was undone
- ``failed_attempt``  malformed model output that was re-decoded and kept out of the history
- ``checkpoint``      a workspace snapshot before/after a tool round (``agent/checkpoints.py``)
- ``rewind``          the session was rewound (code and/or conversation: ``keep`` messages kept)
- ``rewind_undo``     the last rewind was undone
- ``step``            the exact prompt and output ids of one engine request (``agent/steps.py``)
- ``event``           other events that matter (run started/finished, usage, approvals, ...)

Records are flushed on every write, so a killed process loses at most the tool calls still
running. They are fsynced once per step (when the turn is committed) and at compactions, by a
background thread (the loop never waits on the disk; requests made while one runs coalesce), so
a power loss loses at most the last step or two. ``close`` waits for the last fsync. Loading tolerates a torn last line (a
crash in the middle of a write) with a warning; a corrupt line elsewhere is an error.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from ..errors import ConfigError
from .events import Event, event_to_dict
from .messages import Message, ModelTurn, ToolResult
from .steps import StepEncoder

log = logging.getLogger(__name__)

SESSION_FORMAT = 1
MESSAGE = TypeAdapter(Message)
INTERRUPTED = "interrupted: the run stopped before this call finished; call it again if needed"


def new_session_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def session_path(sessions_dir: Path, session_id: str) -> Path:
    if not session_id or "/" in session_id or "\\" in session_id or session_id.startswith("."):
        raise ConfigError(f"Invalid session id {session_id!r}: use the id printed by a run.")
    return sessions_dir / f"{session_id}.jsonl"


def list_sessions(sessions_dir: Path) -> list[str]:
    """Session ids under a folder, newest first."""
    if not sessions_dir.is_dir():
        return []
    files = sorted(sessions_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.stem for p in files]


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """A saved session at a glance (for a picker): no history is loaded."""

    session_id: str
    path: Path
    title: str  # its first user message on one line (at most 80 characters; "" if none yet)
    modified: float | None  # when it was last written (epoch seconds; None: unreadable)


def session_summaries(sessions_dir: Path, *, limit: int | None = None) -> list[SessionSummary]:
    """The saved sessions under a folder, newest first (at most ``limit``); each title is read
    from the first lines of its log only."""
    out = []
    for session_id in list_sessions(sessions_dir)[:limit]:
        path = session_path(sessions_dir, session_id)
        try:
            modified: float | None = path.stat().st_mtime
        except OSError:
            modified = None
        out.append(SessionSummary(session_id, path, _session_title(path), modified))
    return out


def _session_title(path: Path, lines: int = 50) -> str:
    """The first user message of a session log, on one line (reads only the first lines)."""
    try:
        with open(path, encoding="utf-8") as f:
            for _, line in zip(range(lines), f, strict=False):
                record = json.loads(line)
                message = record.get("message") if isinstance(record, dict) else None
                if isinstance(message, dict) and message.get("role") == "user":
                    text = " ".join(str(message.get("content", "")).split())
                    return text[:80]
    except (OSError, ValueError):
        pass
    return ""


class SessionLog:
    """Appends records to one session file. Not thread-safe; one writer per session.

    A new session's file (``create``) is written with its first record, header first: a
    session that never gets a task (an editor's session/new) leaves no empty log behind."""

    def __init__(
        self, path: Path, *, fsync: bool = True, header: dict[str, Any] | None = None
    ) -> None:
        self.path = path
        self.fsync = fsync
        self._file: IO[str] | None = None
        self._header = header
        self._closed = False
        if header is None:
            self._open("a")
        self._syncer: _Syncer | None = None
        self._steps = StepEncoder()

    def _open(self, mode: str) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, mode, encoding="utf-8")  # noqa: SIM115
        return self._file

    @classmethod
    def create(
        cls, sessions_dir: Path, session_id: str, *, fsync: bool = True, **meta: Any
    ) -> SessionLog:
        path = session_path(sessions_dir, session_id)
        if path.exists():
            raise ConfigError(f"Session {session_id} already exists at {path}.")
        header = {"type": "meta", "session_id": session_id, "format": SESSION_FORMAT,
                  "created": time.time(), **meta}  # fmt: skip
        return cls(path, fsync=fsync, header=header)

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, record: dict[str, Any], *, sync: bool = False) -> None:
        self.write_line(json.dumps(record, ensure_ascii=False, default=repr), sync=sync)

    def write_line(self, line: str, *, sync: bool = False) -> None:
        if self._closed:
            raise ValueError(f"session log {self.path} is closed")
        f = self._file
        if f is None:  # a new session's first record: its header goes first
            try:
                f = self._open("x")
            except FileExistsError:
                raise ConfigError(f"Session log {self.path} appeared meanwhile.") from None
            f.write(json.dumps(self._header, ensure_ascii=False, default=repr) + "\n")
            sync = True
        f.write(line + "\n")
        f.flush()
        if sync and self.fsync:
            if self._syncer is None:
                self._syncer = _Syncer(f.fileno(), self.path.name)
            self._syncer.request()

    # Typed helpers. Messages are dumped by pydantic-core straight to JSON text (fast path).

    def message(self, message: Message, *, sync: bool = True) -> None:
        self.write_line('{"type":"message","message":' + message.model_dump_json() + "}", sync=sync)

    def turn_pending(self, turn: ModelTurn) -> None:
        # Not fsynced: the fsync after the first result (or the finished turn) covers it.
        self.write_line('{"type":"turn_pending","turn":' + turn.model_dump_json() + "}")

    def tool_result(self, turn_id: str, result: ToolResult) -> None:
        # Flushed, not fsynced: the turn's commit fsyncs the step once.
        self.write_line(
            '{"type":"tool_result","turn_id":'
            + json.dumps(turn_id)
            + ',"result":'
            + result.model_dump_json()
            + "}"
        )

    def compaction(self, history: list[Message], event: Event) -> None:
        self.write(
            {
                "type": "compaction",
                "history": [m.model_dump(mode="json") for m in history],
                "event": event_to_dict(event),
            },
            sync=True,
        )

    def step(
        self,
        step: int,
        prompt: Sequence[int],
        output: Sequence[int],
        *,
        attempt: int = 0,
        accepted: bool = True,
        finish_reason: str | None = None,
    ) -> None:
        """The ids of one engine request (its prompt as a delta against the previous one)."""
        record = self._steps.record(
            step, prompt, output, attempt=attempt, accepted=accepted, finish_reason=finish_reason
        )
        self.write_line(json.dumps(record, separators=(",", ":")))

    def event(self, event: Event, *, sync: bool = False) -> None:
        self.write({"type": "event", "event": event_to_dict(event)}, sync=sync)

    def close(self) -> None:
        self._closed = True
        if self._file is not None:
            try:
                self._file.flush()
                if self._syncer is not None:
                    self._syncer.close()  # before the file: it syncs this descriptor
                if self.fsync:
                    os.fsync(self._file.fileno())
            finally:
                self._file.close()
                self._file = None


class _Syncer:
    """fsyncs one file in a thread of its own: the event loop never waits on the disk, and
    requests made while an fsync runs coalesce into the next one."""

    def __init__(self, fd: int, name: str) -> None:
        self._fd = fd
        self._wanted = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"fsync {name}", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            try:
                os.fsync(self._fd)
            except OSError as e:  # the disk went away: the records are still flushed
                log.warning("fsync of a session log failed: %s", e)

    def close(self) -> None:
        self._closing = True
        self._wanted.set()
        self._thread.join()


@dataclass
class SessionState:
    """A session rebuilt from its log."""

    session_id: str
    meta: dict[str, Any]
    history: list[Message]
    # Each compaction still in effect, oldest first: (history before, history right after,
    # its HistoryCompacted event as a dict). Rebuilds the undo ledger on resume.
    undo_stack: list[tuple[list[Message], list[Message], dict[str, Any]]] = field(
        default_factory=list
    )
    events: list[dict[str, Any]] = field(default_factory=list)
    failed_attempts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # A model turn whose calls were running when the log ended (completed with error results).
    interrupted_turn: str | None = None
    # Checkpoint records in log order (user messages, snapshots, rewinds): agent.checkpoints.
    timeline: list[dict[str, Any]] = field(default_factory=list)
    # Each conversation rewind still in effect: (history before it, its record). The abandoned
    # branch stays recoverable (undo_rewind), and in the log.
    rewinds: list[tuple[list[Message], dict[str, Any]]] = field(default_factory=list)
    # The sub-agents its tool calls ran: {call_id, agent, session_id, reason, steps, usage}.
    # Their logs are in the folder `child_sessions_dir` names.
    children: list[dict[str, Any]] = field(default_factory=list)


def load_session(path: Path) -> SessionState:
    """Rebuild a session's history exactly from its log."""
    if not path.is_file():
        raise ConfigError(f"No session log at {path}: check the id (see .gemma-agent/sessions/).")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    state = SessionState(session_id=path.stem, meta={}, history=[])
    pending: ModelTurn | None = None
    results: dict[str, ToolResult] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            kind = record.get("type")
            if kind == "meta":
                state.meta = record
                state.session_id = str(record.get("session_id", state.session_id))
            elif kind == "message":
                message = MESSAGE.validate_python(record["message"])
                if pending is not None and message.id == pending.id:
                    pending, results = None, {}
                state.history.append(message)
                if message.role == "user" and not str(message.content).startswith("[agent] "):
                    state.timeline.append({"type": "user", "id": message.id})
            elif kind == "checkpoint":
                state.timeline.append(record)
            elif kind == "rewind":
                state.timeline.append(record)
                if record.get("conversation"):
                    state.rewinds.append((list(state.history), record))
                    state.history = state.history[: int(record["keep"])]
            elif kind == "rewind_undo":
                state.timeline.append(record)
                if record.get("conversation") and state.rewinds:
                    state.history = state.rewinds.pop()[0]
            elif kind == "turn_pending":
                pending, results = ModelTurn.model_validate(record["turn"]), {}
            elif kind == "tool_result":
                result = ToolResult.model_validate(record["result"])
                if pending is not None and record.get("turn_id") == pending.id:
                    results[result.call_id] = result
            elif kind == "compaction":
                after = [MESSAGE.validate_python(m) for m in record["history"]]
                state.undo_stack.append((state.history, after, record.get("event") or {}))
                state.history = list(after)
            elif kind == "undo_compaction":
                if state.undo_stack:  # like CompactionLedger.undo: later messages are kept
                    before, after, _ = state.undo_stack.pop()
                    state.history = [*before, *state.history[len(after) :]]
            elif kind == "subagent":
                state.children.append(record)
            elif kind == "failed_attempt":
                state.failed_attempts.append(record)
            elif kind == "step":
                pass  # token ids for training exports (agent/steps.py)
            elif kind == "event":
                state.events.append(record["event"])
            else:
                state.warnings.append(f"line {number}: unknown record type {kind!r}, skipped")
        except (ValueError, KeyError, ValidationError) as e:
            if number == len(lines):
                msg = f"{path.name}: the last line is incomplete (torn write), ignored: {e}"
                log.warning(msg)
                state.warnings.append(msg)
                break
            raise ConfigError(
                f"Session log {path} is corrupt at line {number} ({e}); "
                "fix or delete that line to resume."
            ) from e
    if pending is not None:
        # Calls that finished keep their results; the rest get a result saying they were cut off.
        done = tuple(
            results.get(c.id)
            or ToolResult(call_id=c.id, name=c.name, content=INTERRUPTED, is_error=True)
            for c in pending.tool_calls
        )
        state.history.append(pending.model_copy(update={"tool_results": done}))
        state.interrupted_turn = pending.id
    return state


def child_sessions_dir(sessions_dir: Path, session_id: str) -> Path:
    """Where the logs of a session's sub-agents are (each a session of its own)."""
    return sessions_dir / f"{session_id}.agents"


def last_model(state: SessionState) -> tuple[str, str | None] | None:
    """The model of a session's last run and its variant (None when the log predates variants):
    its last ``run_started`` event (each run records the model it ran on; a session can switch
    models between runs), else the model its meta line was created with."""
    for event in reversed(state.events):
        if event.get("kind") == "run_started" and event.get("model"):
            return str(event["model"]), (str(event.get("variant") or "") or None)
    model = state.meta.get("model")
    return (str(model), None) if model else None


def saved_model(path: Path) -> tuple[str, str | None] | None:
    """The model (and variant) the saved session at ``path`` last ran on; None when that is
    unknown or the log cannot be read (resuming it reports why)."""
    try:
        return last_model(load_session(path))
    except ConfigError:
        return None
