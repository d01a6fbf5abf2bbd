"""A saved session (or an eval trajectory: the same log format), read back for replay.

    from gemma_agent.agent import read_session

    saved = read_session(".gemma-agent/sessions/20250101-120000-abcdef.jsonl")
    for entry in saved.entries:  # log order: messages and events
        ...
    saved.history  # the conversation a resume would continue from

Reading never writes: no repair of a torn last line, no lock, no fsync (``Agent.open_session``,
which resumes, may repair). The log is validated by the session loader (``agent/session.py``);
a corrupt line is a `ConfigError` that names it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from ..errors import ConfigError
from .events import (
    DroppedItem,
    Event,
    HistoryCompacted,
    Notice,
    PlanItem,
    PlanUpdated,
    RunFinished,
    RunStarted,
    RunUsage,
    Usage,
)
from .messages import Message, ModelTurn, SummaryMessage, UserMessage
from .session import MESSAGE, load_session, session_path

Entry = Message | Event
T = TypeVar("T")
_MESSAGES = (UserMessage, ModelTurn, SummaryMessage)


@dataclass(frozen=True, slots=True)
class SavedSession:
    """A session log read back: what happened, in order, and where it ended."""

    session_id: str
    path: Path
    meta: Mapping[str, Any]  # the log's first line: model, workspace, creation time, ...
    history: tuple[Message, ...]  # the conversation as a resume would continue it
    # Everything worth showing, in log order: each user message and finished model turn (with
    # its tool results), the compactions (`HistoryCompacted`), and the logged events
    # (`RunStarted`, `Usage`, `PlanUpdated`, `Notice`, `RunFinished`). Approvals, rewinds and
    # undone compactions become `Notice`s. A turn cut off by the end of the log comes last,
    # its unfinished calls answered as interrupted.
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()  # a torn last line, unknown records (skipped)

    @property
    def events(self) -> tuple[Event, ...]:
        """The logged events, in order (the entries that are not messages)."""
        return tuple(e for e in self.entries if not isinstance(e, _MESSAGES))

    @property
    def model(self) -> str:
        """The model of the last run (else the one the session was created with)."""
        for entry in reversed(self.entries):
            if isinstance(entry, RunStarted) and entry.model:
                return entry.model
        return str(self.meta.get("model") or "")


def read_session(source: str | Path, *, workspace: str | Path | None = None) -> SavedSession:
    """Read a saved session without changing it.

    ``source`` is a session log (``.gemma-agent/sessions/ID.jsonl``, or an eval run's
    ``trajectories/*.jsonl``) or a session id, looked up in ``<workspace>/.gemma-agent/sessions``
    (default workspace: the current folder). A missing or corrupt log raises `ConfigError`.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        logs = sorted((path / "trajectories").glob("*.jsonl")) or sorted(path.glob("*.jsonl"))
        hint = f" such as {logs[0]}" if logs else ""
        raise ConfigError(f"{path} is a folder: give one session log in it{hint}.")
    if not path.is_file() and path.suffix != ".jsonl" and len(path.parts) == 1:
        sessions = Path(workspace or ".").expanduser() / ".gemma-agent" / "sessions"
        path = session_path(sessions, str(source))
    if not path.is_file():
        raise ConfigError(
            f"No session log at {path}: give a .jsonl session log, an eval run's "
            "trajectories/*.jsonl, or a session id of this workspace (see .gemma-agent/sessions/)."
        )
    state = load_session(path)  # validates every line; a corrupt one raises ConfigError
    warnings = list(state.warnings)
    entries = _entries(path, warnings)
    if state.interrupted_turn is not None:
        last = state.history[-1]
        entries.append(last)
        entries.append(
            Notice("The log ends while this turn's tool calls ran (interrupted).", "warning")
        )
    if not state.meta and not entries:
        raise ConfigError(f"{path} holds no session records: is it a session log?")
    return SavedSession(
        session_id=state.session_id,
        path=path,
        meta=dict(state.meta),
        history=tuple(state.history),
        entries=tuple(entries),
        warnings=tuple(warnings),
    )


def _entries(path: Path, warnings: list[str]) -> list[Entry]:
    """The log's records in order, as messages and events (the loader checked each line)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out: list[Entry] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            entry = _entry(record)
        except (ValueError, KeyError, TypeError, ValidationError) as e:
            if number >= len(lines) - 1:  # the torn last line the loader warned about
                break
            warnings.append(f"line {number}: not shown ({e})")
            continue
        if entry is not None:
            out.append(entry)
    return out


def _entry(record: dict[str, Any]) -> Entry | None:
    kind = record.get("type")
    if kind == "message":
        message: Message = MESSAGE.validate_python(record["message"])
        return message
    if kind == "compaction":
        return _compacted(record.get("event") or {})
    if kind == "undo_compaction":
        return Notice("The last compaction was undone (/undo-compact).")
    if kind == "rewind":
        what = " and ".join(w for w in ("code", "conversation") if record.get(w)) or "nothing"
        return Notice(f"Rewound ({what}); {record.get('keep', '?')} messages kept.", "warning")
    if kind == "rewind_undo":
        return Notice("The last rewind was undone.", "warning")
    if kind == "event":
        return _event(record["event"])
    return None  # meta, turn_pending, tool_result, checkpoint, step, failed_attempt


def _build(cls: type[T], data: Mapping[str, Any], **values: Any) -> T:
    """A dataclass from a logged dict: known fields only (newer logs may carry more)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names and k not in values}, **values)


def _compacted(data: Mapping[str, Any]) -> HistoryCompacted:
    dropped = tuple(_build(DroppedItem, d) for d in data.get("dropped") or ())
    return _build(HistoryCompacted, data, dropped=dropped)


def _event(data: Mapping[str, Any]) -> Event | None:
    match data.get("kind"):
        case "run_started":
            return _build(RunStarted, data)
        case "usage":
            return _build(Usage, data)
        case "notice":
            return _build(Notice, data)
        case "plan_updated":
            items = tuple(_build(PlanItem, i) for i in data.get("items") or ())
            return _build(PlanUpdated, data, items=items)
        case "run_finished":
            usage = data.get("usage")
            return _build(RunFinished, data, usage=_build(RunUsage, usage) if usage else None)
        case "history_compacted":
            return _compacted(data)
        case "approval_requested":
            call = data.get("call") or {}
            why = f": {data['reason']}" if data.get("reason") else ""
            return Notice(
                f"Approval asked for {call.get('name', '?')}{why}", "info", int(data.get("step", 0))
            )
        case _:
            return None
