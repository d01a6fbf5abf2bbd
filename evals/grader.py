"""Grading, kept apart from generation (as in the SWE-bench harness).

The hidden tests are written over the workspace, the task's test command runs in the sandbox,
and the verdict needs both the exit code AND at least one test executed. Counts come from the
JUnit XML pytest writes (we ask for it through PYTEST_ADDOPTS), else from pytest's or
unittest's summary line. No test ran -> ``error``; the sandbox failed -> ``error`` with
``infra``; both are kept out of pass@k. A test run past its timeout -> ``timeout``.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .sandbox import CommandResult, Limits, SandboxKind
from .tasks import Task
from .workspace import Workspace

Status = Literal["passed", "failed", "error", "timeout"]
JUNIT_NAME = "junit.xml"


@dataclass(frozen=True, slots=True)
class Tally:
    run: int  # tests executed (or attempted: a collection error counts as one)
    failed: int  # failures + errors


@dataclass(frozen=True, slots=True)
class Grade:
    status: Status
    tests_run: int = 0
    tests_failed: int = 0
    exit_code: int | None = None
    seconds: float = 0.0
    output: str = ""
    error: str | None = None
    infra: bool = False  # the harness failed, not the solution

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def parse_junit(path: Path) -> Tally | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        return None
    run = failed = 0
    for suite in suites:
        try:
            tests = int(suite.get("tests", "0"))
            skipped = int(suite.get("skipped", "0"))
            failed += int(suite.get("failures", "0")) + int(suite.get("errors", "0"))
        except ValueError:
            return None
        run += tests - skipped
    return Tally(run=run, failed=failed)


_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|xfailed|xpassed)\b")
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in ", re.MULTILINE)
_UNITTEST_FAILED = re.compile(r"^FAILED \((.*)\)$", re.MULTILINE)


def parse_summary(output: str) -> Tally | None:
    """pytest's final line ("3 passed, 1 failed in 0.12s") or unittest's "Ran N tests"."""
    lines = [ln.strip(" =") for ln in output.strip().splitlines()]
    for line in reversed(lines[-20:]):
        if re.search(r"\bin [\d.]+s\b", line) and (
            _PYTEST_COUNT.search(line) or "no tests ran" in line
        ):
            run = failed = 0
            for n, word in _PYTEST_COUNT.findall(line):
                run += int(n)
                if word in ("failed", "error", "errors"):
                    failed += int(n)
            return Tally(run=run, failed=failed)
    ran = _UNITTEST_RAN.findall(output)
    if ran:
        failed = 0
        for detail in _UNITTEST_FAILED.findall(output):
            failed += sum(int(n) for n in re.findall(r"(?:failures|errors)=(\d+)", detail))
        return Tally(run=int(ran[-1]), failed=failed)
    return None


def verdict(result: CommandResult, counts: Tally | None) -> Grade:
    common: dict[str, Any] = {
        "exit_code": result.exit_code,
        "seconds": result.seconds,
        "output": result.output,
    }
    if result.infra_error:
        return Grade("error", error=f"sandbox failure: {result.infra_error}", infra=True, **common)
    if result.timed_out:
        run = counts.run if counts else 0
        return Grade(
            "timeout", tests_run=run, error="the tests ran past the test timeout", **common
        )
    if counts is None or counts.run == 0:
        why = (
            "no tests ran" if counts else "no test was executed (no pytest/unittest summary found)"
        )
        return Grade("error", error=f"{why}; exit code {result.exit_code}", **common)
    if result.exit_code == 0 and counts.failed == 0:
        return Grade("passed", tests_run=counts.run, **common)
    error = f"{counts.failed} of {counts.run} tests failed; exit code {result.exit_code}"
    return Grade("failed", tests_run=counts.run, tests_failed=counts.failed, error=error, **common)


async def grade(
    task: Task,
    workspace: Workspace,
    *,
    kind: SandboxKind | None = None,
) -> Grade:
    """Write the hidden tests over the workspace, run the test command, decide."""
    await asyncio.to_thread(workspace.write_files, task.tests)
    junit = workspace.home / JUNIT_NAME
    junit.unlink(missing_ok=True)
    env = {
        # Plugins of our own venv stay out of the task's test run (and it starts in 0.2 s).
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTEST_ADDOPTS": f"-p no:cacheprovider --junitxml={junit}",
    }
    result = await workspace.run(
        task.test_command,
        time_limit=task.test_timeout,
        env=env,
        limits=Limits(memory_mb=task.memory_mb),
        kind=kind,
    )
    counts = parse_junit(junit) if junit.exists() else None
    if counts is None:
        counts = parse_summary(result.output)
    return verdict(result, counts)
