"""The exact token ids of every engine request, as ``step`` records of the session log.

Training data must be token for token what the model saw and produced. A re-render of the typed
history does not give those ids back (docs/format.md, 'Re-rendering differences': the model's
own argument text, whitespace and reasoning are not canonical), so the run records them: one
``step`` record per request of the loop, holding its prompt as a delta against the previous
record and the ids it generated::

    {"type": "step", "step": 3, "attempt": 0, "accepted": true, "keep": 812,
     "prompt": [...], "prompt_len": 870, "output": [...], "finish_reason": "stop"}

``keep`` ids are shared with the previous record's prompt followed by its output (an exact
append keeps all of them but the normalised stop id), ``prompt`` holds the rest. The log thus
grows by about the number of new tokens per step, not by the prompt's length. ``accepted`` is
false for a malformed output that was re-decoded (it never entered the history). `read_steps`
rebuilds every record's full prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

STEP = "step"
_CHUNK = 4096


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading ids ``a`` and ``b`` share (chunked slice compares: C speed)."""
    n = min(len(a), len(b))
    i = 0
    while i < n:
        j = min(i + _CHUNK, n)
        if a[i:j] == b[i:j]:
            i = j
            continue
        while a[i] == b[i]:
            i += 1
        return i
    return n


class StepEncoder:
    """Builds ``step`` records for one log, each prompt as a delta against the record before."""

    def __init__(self) -> None:
        # The previous record: its prompt (a list the model layer only ever appends to while it
        # is live), that prompt's length, and its output.
        self._prompt: Sequence[int] = ()
        self._len = 0
        self._output: list[int] = []

    def record(
        self,
        step: int,
        prompt: Sequence[int],
        output: Sequence[int],
        *,
        attempt: int = 0,
        accepted: bool = True,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        base = getattr(prompt, "base", prompt)  # a PromptIds view shares the live list
        n = len(prompt)
        if base is self._prompt and n >= self._len:
            keep = self._len  # the same live list, appended to since
        else:
            keep = common_prefix(_view(prompt, min(n, self._len)), _view(self._prompt, self._len))
        if keep == self._len and n > keep:
            keep += common_prefix(prompt[keep : keep + len(self._output)], self._output)
        record = {
            "type": STEP,
            "step": step,
            "attempt": attempt,
            "accepted": accepted,
            "keep": keep,
            "prompt": list(prompt[keep:n]),
            "prompt_len": n,
            "output": list(output),
            "finish_reason": finish_reason,
        }
        self._prompt, self._len, self._output = base, n, list(output)
        return record


def _view(ids: Sequence[int], n: int) -> Sequence[int]:
    return ids if len(ids) == n else ids[:n]


@dataclass(frozen=True, slots=True)
class Step:
    """One engine request of a run, rebuilt from the session log."""

    step: int  # the loop's step number (1-based, per run)
    attempt: int  # 0, or the re-decode number of a malformed output
    accepted: bool  # its output entered the history (False: re-decoded)
    prompt_ids: tuple[int, ...]  # exactly what the engine was given
    output_ids: tuple[int, ...]  # every id it generated, the stop id included
    finish_reason: str | None
    line: int  # its line in the log (1-based)


def iter_steps(lines: Sequence[str] | Iterator[str]) -> Iterator[Step]:
    """The ``step`` records of a session log's lines, full prompts rebuilt."""
    prev: list[int] = []
    for number, line in enumerate(lines, 1):
        if '"step"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line; load_session reports it
        if not isinstance(record, dict) or record.get("type") != STEP:
            continue
        keep = int(record["keep"])
        prompt = [*prev[:keep], *record["prompt"]]
        if len(prompt) != record["prompt_len"] or keep > len(prev):
            raise ConfigError(
                f"step record at line {number} does not follow the record before it "
                "(a log edited or written by two processes?)"
            )
        output = list(record["output"])
        yield Step(
            step=int(record["step"]),
            attempt=int(record.get("attempt", 0)),
            accepted=bool(record.get("accepted", True)),
            prompt_ids=tuple(prompt),
            output_ids=tuple(output),
            finish_reason=record.get("finish_reason"),
            line=number,
        )
        prev = prompt + output


def read_steps(path: Path) -> list[Step]:
    """Every engine request recorded in the session log at ``path``, in order."""
    if not path.is_file():
        raise ConfigError(f"No session log at {path}.")
    with open(path, encoding="utf-8") as f:
        return list(iter_steps(f))
