"""Where long tool output goes: the model sees head + tail, the full text waits here.

``SpillStore(root)`` keeps each spilled text as a file (``root/<id>.txt`` plus a small
``<id>.json``); with ``root=None`` it uses a private temporary folder removed with the store, so
spilled output never sits in memory. ``recall_output`` (``tools/recall.py``) lets the model page
through or grep a spilled text; compaction uses the same ids when it clears old tool results.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_ID_RE = re.compile(r"^sp_[0-9a-f]{12}$")
_WRITE_CHUNK = 1 << 20  # characters per write: encoding a 50 MB string at once doubles memory


@dataclass(frozen=True, slots=True)
class SpillInfo:
    id: str
    label: str
    chars: int
    lines: int


class SpillWriter:
    """Appends text to one spill entry as it is produced (e.g. a shell's streaming output)."""

    def __init__(self, store: SpillStore, spill_id: str, label: str) -> None:
        self.id = spill_id
        self._store = store
        self._label = label
        self._file: IO[str] = open(  # noqa: SIM115 - closed in close()
            store._text_path(spill_id), "w", encoding="utf-8", errors="replace", newline=""
        )
        self.chars = 0
        self.newlines = 0
        self._last = ""

    def write(self, text: str) -> None:
        for start in range(0, len(text), _WRITE_CHUNK):
            self._file.write(text[start : start + _WRITE_CHUNK])
        self.chars += len(text)
        self.newlines += text.count("\n")
        if text:
            self._last = text[-1]

    def close(self) -> SpillInfo:
        if not self._file.closed:
            self._file.close()
        lines = self.newlines + (1 if self.chars and self._last != "\n" else 0)
        info = SpillInfo(self.id, self._label, self.chars, lines)
        self._store._write_meta(info)
        return info

    def __enter__(self) -> SpillWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpillStore:
    def __init__(self, root: Path | str | None = None) -> None:
        self._cleanup: weakref.finalize[Any, SpillStore] | None
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="gemma-agent-spill-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.root), True)
        else:
            self.root = Path(root)  # made with the first spill: a session may never spill
            self._cleanup = None

    def put(self, text: str, *, label: str = "") -> str:
        """Store a text; returns its id."""
        with self.writer(label=label) as writer:
            writer.write(text)
        return writer.id

    def writer(self, *, label: str = "") -> SpillWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        return SpillWriter(self, f"sp_{uuid.uuid4().hex[:12]}", label)

    def get(self, spill_id: str) -> str:
        """The full text of a spill; KeyError (with a clear message) for an unknown id."""
        return self._text_path(self._checked(spill_id)).read_text(
            encoding="utf-8", errors="replace"
        )

    def info(self, spill_id: str) -> SpillInfo:
        path = self.root / f"{self._checked(spill_id)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {"label": "", "chars": 0, "lines": 0}
        return SpillInfo(spill_id, data["label"], data["chars"], data["lines"])

    def iter_lines(self, spill_id: str, *, max_line: int = 2000) -> Iterator[str]:
        """Lines of a spill (without newlines), each cut to ``max_line`` characters.

        Reads in bounded pieces, so one 50 MB line does not land in memory at once.
        """
        with self._text_path(self._checked(spill_id)).open(
            encoding="utf-8", errors="replace", newline=""
        ) as f:
            while True:
                piece = f.readline(max_line + 1)
                if not piece:
                    return
                if piece.endswith("\n") or len(piece) <= max_line:
                    yield piece.rstrip("\r\n")
                    continue
                # An overlong line: keep its start, skip to its end.
                skipped = 0
                while True:
                    more = f.readline(1 << 16)
                    skipped += len(more)
                    if not more or more.endswith("\n"):
                        break
                yield f"{piece[:max_line]} [... {skipped + len(piece) - max_line:,} more characters]"

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("sp_*.txt"))

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()

    # internals

    def _checked(self, spill_id: str) -> str:
        if not isinstance(spill_id, str) or not _ID_RE.match(spill_id):
            raise KeyError(f"not a spill id: {spill_id!r} (ids look like 'sp_0123456789ab')")
        if not self._text_path(spill_id).exists():
            raise KeyError(f"no spilled output with id {spill_id!r}")
        return spill_id

    def _text_path(self, spill_id: str) -> Path:
        return self.root / f"{spill_id}.txt"

    def _write_meta(self, info: SpillInfo) -> None:
        meta = {"label": info.label, "chars": info.chars, "lines": info.lines}
        (self.root / f"{info.id}.json").write_text(json.dumps(meta), encoding="utf-8")


def _line_cut(text: str, start: int, stop: int, *, forward: bool) -> int:
    """Move a cut point to a line boundary when one is near (within a quarter of the span)."""
    if forward:
        nl = text.find("\n", start, stop)
        return nl + 1 if nl != -1 and nl - start < (stop - start) // 4 + 1 else start
    nl = text.rfind("\n", start, stop)
    return nl + 1 if nl != -1 and stop - nl < (stop - start) // 4 + 1 else stop


def cap_text(text: str, limit: int, spill_id: str | None, *, head_share: float = 0.5) -> str:
    """Head and tail of ``text`` within about ``limit`` characters, with a marker in between."""
    if len(text) <= limit:
        return text
    head = text[: int(limit * head_share)]
    tail = text[len(text) - (limit - len(head)) :]
    return join_capped(head, tail, len(text), text.count("\n"), spill_id)


def join_capped(
    head: str, tail: str, total_chars: int, total_newlines: int, spill_id: str | None
) -> str:
    """Join the first and last pieces of a long text with a marker saying what was cut.

    The cut moves to line boundaries when one is near, so the model sees whole lines.
    """
    head = head[: _line_cut(head, 0, len(head), forward=False)]
    tail = tail[_line_cut(tail, 0, len(tail), forward=True) :]
    cut = total_chars - len(head) - len(tail)
    lines = max(0, total_newlines - head.count("\n") - tail.count("\n"))
    where = (
        f'full output: recall_output(spill_id="{spill_id}")' if spill_id else "full output not kept"
    )
    marker = f"[... {cut:,} characters ({lines:,} lines) cut; {where} ...]"
    return f"{head}{'' if head.endswith(chr(10)) or not head else chr(10)}{marker}\n{tail}"


__all__ = ["SpillInfo", "SpillStore", "SpillWriter", "cap_text", "join_capped"]
