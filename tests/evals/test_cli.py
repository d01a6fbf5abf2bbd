"""The real command line: `python -m gemma_agent eval ...` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .helpers import adder_suite

TASKS = 8


def eval_command(suite: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gemma_agent",
        "eval",
        str(suite),
        "--oracle",
        "--concurrency",
        "1",
        "--output",
        str(out),
        "--no-progress",
        *extra,
    ]


def result_lines(out: Path) -> list[str]:
    path = out / "results.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def test_resume_after_sigkill_finishes_the_rest(tmp_path: Path):
    # Each hidden test takes a moment, so the run can be killed in the middle.
    suite = adder_suite(
        tmp_path / "suite", TASKS, test_body="    import time\n    time.sleep(0.7)\n"
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        eval_command(suite, out),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(result_lines(out)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the eval run made no progress"
            time.sleep(0.05)
        killed = proc.pid
        os.kill(killed, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    before = result_lines(out)
    assert 2 <= len(before) < TASKS

    # Without --resume the folder is not clobbered.
    refused = subprocess.run(eval_command(suite, out), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    assert result_lines(out)[: len(before)] == before

    resumed = subprocess.run(
        eval_command(suite, out, "--resume"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    after = result_lines(out)
    # The finished task-samples were kept as they were, and none ran twice.
    assert after[: len(before)] == before
    keys = [(json.loads(line)["task_id"], json.loads(line)["sample"]) for line in after]
    assert len(keys) == len(set(keys)) == TASKS
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["total"], summary["passed"], summary["errors"]) == (TASKS, TASKS, 0)
    assert (out / "report.html").exists()
    # The workspace the killed run left behind was swept.
    assert not list(Path(tempfile.gettempdir()).glob(f"gemma-eval-{killed}-*"))


def test_shard_and_merge_from_the_command_line(tmp_path: Path):
    suite = adder_suite(tmp_path / "suite", 6)
    outs = []
    for i in (1, 2, 3):
        out = tmp_path / f"shard{i}"
        done = subprocess.run(
            eval_command(suite, out, "--shard", f"{i}/3"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outs.append(out)
    merged = tmp_path / "merged"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gemma_agent",
            "eval-merge",
            *map(str, outs),
            "--output",
            str(merged),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((merged / "summary.json").read_text())
    assert (summary["total"], summary["passed"]) == (6, 6)
    assert sum(len(result_lines(o)) for o in outs) == 6


def test_bad_suite_is_a_clear_error(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "gemma_agent", "eval", str(tmp_path / "nope"), "--oracle"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "unknown suite" in done.stderr
