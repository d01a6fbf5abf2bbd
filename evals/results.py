"""One result per task-sample, appended to ``results.jsonl`` and flushed as it lands.

A run killed at any moment loses no finished task; a torn last line (killed mid-write) is
ignored on reading, and the task-sample simply runs again on ``--resume``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

Status = Literal["passed", "failed", "error", "timeout"]


class Tokens(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: int = 0
    cached: int = 0
    generated: int = 0
    thinking: int = 0


class SampleResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str
    sample: int
    category: str = "general"
    passed: bool
    status: Status
    steps: int = 0
    tokens: Tokens = Tokens()
    tool_calls: int = 0
    tool_errors: int = 0
    seconds: float = 0.0  # whole task-sample: setup, agent, tests
    agent_seconds: float = 0.0
    test_seconds: float = 0.0
    tests_run: int = 0
    tests_failed: int = 0
    stop_reason: str | None = None  # the agent's RunFinished reason ("oracle" under --oracle)
    error: str | None = None
    infra: bool = False  # harness failure: error excluded from pass@k
    test_output: str = ""  # tail of the test command's output
    trajectory: str | None = None  # relative to the output folder

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.sample)


RESULTS_NAME = "results.jsonl"


def read_results(path: Path) -> list[SampleResult]:
    """Every complete, valid line; later lines win for the same task-sample."""
    if not path.exists():
        return []
    found: dict[tuple[str, int], SampleResult] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn write of a killed run
            try:
                r = SampleResult.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                continue
            found[r.key] = r
    return list(found.values())


class ResultsLog:
    """Append-only writer; each line is flushed and fsynced before the next task is counted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repair()
        self._file = path.open("a", encoding="utf-8")

    def _repair(self) -> None:
        # Drop a torn last line so the next append starts on a fresh line.
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as f:
                f.truncate(cut)

    def append(self, result: SampleResult) -> None:
        self._file.write(result.model_dump_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
