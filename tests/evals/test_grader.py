from __future__ import annotations

from pathlib import Path

import pytest
from gemma_agent.evals.grader import Tally, grade, parse_junit, parse_summary, verdict
from gemma_agent.evals.sandbox import CommandResult, bwrap_works
from gemma_agent.evals.tasks import Task
from gemma_agent.evals.workspace import Workspace

KINDS = [
    "rlimit",
    pytest.param(
        "bwrap", marks=pytest.mark.skipif(not bwrap_works(), reason="bwrap cannot run here")
    ),
]


def make_task(test_file: str, *, command: str = "python -m pytest -q tests", **kw) -> Task:
    return Task(
        id="t",
        instruction="x",
        files={"mod.py": b"VALUE = 1\n"},
        tests={"tests/test_mod.py": test_file.encode()} if test_file else {},
        test_command=command,
        **kw,
    )


async def grade_task(task: Task, kind: str):
    ws = Workspace.create(task)
    try:
        return await grade(task, ws, kind=kind)  # type: ignore[arg-type]
    finally:
        ws.cleanup()


@pytest.mark.parametrize("kind", KINDS)
async def test_pass_and_fail(kind):
    ok = await grade_task(
        make_task("from mod import VALUE\n\ndef test_v():\n    assert VALUE == 1\n"), kind
    )
    assert (ok.status, ok.tests_run, ok.infra) == ("passed", 1, False)
    bad = await grade_task(
        make_task(
            "from mod import VALUE\n\ndef test_a():\n    assert VALUE == 2\n\ndef test_b():\n    pass\n"
        ),
        kind,
    )
    assert (bad.status, bad.tests_run, bad.tests_failed) == ("failed", 2, 1)


@pytest.mark.parametrize("kind", KINDS)
async def test_no_tests_ran_is_an_error_not_a_pass(kind):
    # pytest finds nothing (exit 5) ...
    empty = await grade_task(make_task("# no tests here\n"), kind)
    assert empty.status == "error" and "no tests ran" in (empty.error or "")
    # ... and a command that exits 0 without running any test is not a pass either.
    silent = await grade_task(make_task("", command="true"), kind)
    assert silent.status == "error" and not silent.passed


@pytest.mark.parametrize("kind", KINDS)
async def test_broken_candidate_is_a_failure(kind):
    # The candidate breaks the test module's import: the test was attempted and failed.
    task = make_task("from mod import MISSING\n\ndef test_v():\n    pass\n")
    g = await grade_task(task, kind)
    assert g.status == "failed" and g.tests_run == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_test_timeout(kind):
    task = make_task("import time\n\ndef test_slow():\n    time.sleep(30)\n", test_timeout=1.5)
    g = await grade_task(task, kind)
    assert g.status == "timeout" and not g.passed and g.seconds < 10


@pytest.mark.parametrize("kind", KINDS)
async def test_memory_limit(kind):
    test = "def test_big():\n    blob = bytearray(3 * 1024**3)\n    assert blob\n"
    g = await grade_task(make_task(test, memory_mb=512), kind)
    assert g.status == "failed" and "MemoryError" in g.output


@pytest.mark.skipif(not bwrap_works(), reason="bwrap cannot run here")
async def test_bwrap_confines_writes_and_network(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    test = (
        "import socket\nimport pytest\n\n"
        f"def test_cannot_write_outside():\n    with pytest.raises(OSError):\n        open({str(outside)!r}, 'w')\n\n"
        "def test_no_network():\n"
        "    names = open('/proc/net/dev').read()\n"
        "    assert 'lo:' in names and names.count(':') == 1  # loopback only\n"
        "    with pytest.raises(OSError):\n"
        "        socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
    )
    g = await grade_task(make_task(test), "bwrap")
    assert g.status == "passed", g.output
    assert not outside.exists()


def test_verdict_infra_error_is_excluded():
    g = verdict(CommandResult(1, "bwrap: boom", 0.1, infra_error="bwrap: boom"), Tally(3, 0))
    assert (g.status, g.infra) == ("error", True)


def test_parse_summary():
    assert parse_summary("....\n===== 3 passed, 1 failed, 2 skipped in 0.12s =====\n") == Tally(
        4, 1
    )
    assert parse_summary("1 error in 0.05s") == Tally(1, 1)
    assert parse_summary("no tests ran in 0.01s") == Tally(0, 0)
    unittest_out = "..F\n----\nRan 3 tests in 0.001s\n\nFAILED (failures=1)\n"
    assert parse_summary(unittest_out) == Tally(3, 1)
    assert parse_summary("hello") is None


def test_parse_junit(tmp_path: Path):
    p = tmp_path / "j.xml"
    p.write_text(
        '<testsuites><testsuite tests="5" failures="1" errors="1" skipped="2"/>'
        '<testsuite tests="1" failures="0" errors="0" skipped="0"/></testsuites>'
    )
    assert parse_junit(p) == Tally(run=4, failed=2)
    p.write_text("<not xml")
    assert parse_junit(p) is None
