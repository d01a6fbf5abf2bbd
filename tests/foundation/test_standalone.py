"""The repository stands alone: nothing in it points to notes that live outside it.

A user's clone has only the repository. References to design notes kept beside it (a sibling
folder of notes on the format and the engine) would leave readers with dead pointers and tests
with missing data; the project's own reference is ``docs/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Built from pieces so that this file does not match itself.
_NEEDLES = (
    "../" + "shared",
    "shared/" + "gemma4",
    "shared/" + "engine",
    "FORMAT" + ".md",
    "VLLM_CPU" + ".md",
    "DESIGN" + ".md",
)
_OUTSIDE = re.compile("|".join(re.escape(s) for s in _NEEDLES).encode())


def _repository_files() -> list[str]:
    """Tracked files plus new ones git does not ignore (so that a file is checked before it is
    committed), relative to the repository root."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the file list comes from git")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return sorted({f for f in out.decode().split("\0") if f})


def test_no_file_refers_to_notes_outside_the_repository() -> None:
    files = _repository_files()
    assert THIS in files
    hits = []
    for name in files:
        path = ROOT / name
        if name == THIS or not path.is_file():  # this test; a deletion not yet committed
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if _OUTSIDE.search(line):
                text = line.decode("utf-8", "replace").strip()
                hits.append(f"{name}:{number}: {text[:120]}")
    assert not hits, (
        "these lines point outside the repository (a sibling notes folder); point to "
        "docs/format.md or docs/engine-cpu.md, or say it in plain words:\n" + "\n".join(hits)
    )


def test_the_pattern_finds_what_it_should() -> None:
    sibling = "../" + "shared/gemma4/examples"  # in pieces, like the needles
    for text in (sibling, "see FORMAT" + ".md", "VLLM_CPU" + ".md", "DESIGN" + ".md §2"):
        assert _OUTSIDE.search(text.encode()), text
    for text in ("docs/format.md", "docs/engine-cpu.md", "one shared engine", "VLLM_CPU_KVCACHE"):
        assert not _OUTSIDE.search(text.encode()), text
