"""The README's quickstart is a program that runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_runs_with_the_scripted_engine(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,  # its session log goes to the working folder: not into the checkout
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "tool add({'a': 2, 'b': 40}) -> 42" in out.stdout
    assert "answer: 2 + 40 = 42. (final_answer, 2 steps)" in out.stdout
