"""read_file, write_file, edit_file, list_dir, glob, grep and update_plan on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gemma_agent.tools import PlanChanged, ToolContext, ToolOutcome, ToolRegistry
from gemma_agent.tools.builtin import coding_tools


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def events() -> list[object]:
    return []


@pytest.fixture
def call(ws: Path, events: list[object]):  # type: ignore[no-untyped-def]
    registry = ToolRegistry(coding_tools(sandbox="none"))
    ctx = ToolContext(workspace=ws, emit=events.append)

    async def _call(name: str, **arguments: object) -> ToolOutcome:
        return await registry.call(name, arguments, ctx)

    return _call


async def test_read_file_numbers_and_ranges(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    (ws / "f.py").write_text("".join(f"row {i}\n" for i in range(1, 11)))
    out = await call("read_file", path="f.py")
    assert out.content.splitlines()[0] == "     1\trow 1"
    assert out.content.splitlines()[-1] == "    10\trow 10"
    part = await call("read_file", path="f.py", start_line=3, end_line=4)
    assert part.content == "     3\trow 3\n     4\trow 4"
    past = await call("read_file", path="f.py", start_line=50)
    assert past.is_error and "has 10 lines" in past.content
    backwards = await call("read_file", path="f.py", start_line=5, end_line=2)
    assert backwards.is_error
    (ws / "empty.txt").write_text("")
    assert (await call("read_file", path="empty.txt")).content == "(empty.txt is empty)"


async def test_read_file_long_file_in_pieces(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    (ws / "long.txt").write_text("".join(f"{'x' * 70} {i}\n" for i in range(1, 5001)))
    out = await call("read_file", path="long.txt")
    assert not out.is_error and out.spill_id is None
    last = out.content.splitlines()[-1]
    assert last.startswith(
        "[... more lines follow; continue with read_file(path='long.txt', start_line="
    )
    next_line = int(last.rsplit("=", 1)[1].rstrip(")]"))
    follow = await call("read_file", path="long.txt", start_line=next_line, end_line=next_line)
    assert follow.content.endswith(f" {next_line}")


async def test_read_file_refuses_binary_huge_dirs_and_pipes(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    (ws / "img.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    out = await call("read_file", path="img.bin")
    assert out.is_error and "binary file" in out.content
    with (ws / "big.log").open("wb") as f:
        f.truncate(11 * 1024 * 1024)
        f.seek(0)
        f.write(b"text\n" * 10)
    big = await call("read_file", path="big.log")
    assert big.is_error and "too large to read whole" in big.content and "start_line" in big.content
    (ws / "d").mkdir()
    assert "is a directory; use list_dir" in (await call("read_file", path="d")).content
    os.mkfifo(ws / "pipe")
    fifo = await call("read_file", path="pipe")
    assert fifo.is_error and "not a regular file" in fifo.content
    missing = await call("read_file", path="nope.txt")
    assert missing.is_error and "does not exist" in missing.content


async def test_write_file(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    out = await call("write_file", path="pkg/mod.py", content="a = 1\nb = 2\n")
    assert out.content == "Created pkg/mod.py (2 lines, 12 bytes)"
    assert (ws / "pkg" / "mod.py").read_text() == "a = 1\nb = 2\n"
    (ws / "pkg" / "mod.py").chmod(0o755)
    again = await call("write_file", path="pkg/mod.py", content="c = 3")
    assert again.content == "Overwrote pkg/mod.py (1 lines, 5 bytes)"
    assert (ws / "pkg" / "mod.py").stat().st_mode & 0o777 == 0o755
    assert not list((ws / "pkg").glob(".*tmp"))
    assert (await call("write_file", path="pkg", content="x")).is_error


async def test_edit_file_exact_once_with_diff(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    src = "def f():\n    return 1\n\n\ndef g():\n    return 1\n"
    (ws / "m.py").write_text(src)
    out = await call(
        "edit_file",
        path="m.py",
        edits=[
            {"old_text": "def f():\n    return 1", "new_text": "def f():\n    return 10"},
            {"old_text": "def g():\n    return 1", "new_text": "def g():\n    return 20"},
        ],
    )
    assert not out.is_error, out
    assert (ws / "m.py").read_text() == "def f():\n    return 10\n\n\ndef g():\n    return 20\n"
    assert out.content.startswith("--- a/m.py\n+++ b/m.py\n@@")
    assert "-    return 1\n+    return 10" in out.content and "+    return 20" in out.content


async def test_edit_file_ambiguous_and_all_or_nothing(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    src = "x = 1\ny = 2\nx = 1\n"
    (ws / "m.py").write_text(src)
    out = await call(
        "edit_file",
        path="m.py",
        edits=[
            {"old_text": "y = 2", "new_text": "y = 3"},
            {"old_text": "x = 1", "new_text": "x = 0"},
        ],
    )
    assert out.is_error
    assert "edit 2: old_text appears 2 times in m.py (at lines 1, 3)" in out.content
    assert "replace_all" in out.content
    assert (ws / "m.py").read_text() == src  # the first edit was not written either
    every = await call(
        "edit_file",
        path="m.py",
        edits=[{"old_text": "x = 1", "new_text": "x = 0", "replace_all": True}],
    )
    assert not every.is_error and (ws / "m.py").read_text() == "x = 0\ny = 2\nx = 0\n"


async def test_edit_file_not_found_shows_near_matches(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    (ws / "m.py").write_text("class A:\n    def run(self):\n        return compute(1, 2)\n")
    out = await call(
        "edit_file",
        path="m.py",
        edits=[{"old_text": "def run(self):\n    return compute(1, 2)", "new_text": "pass"}],
    )
    assert out.is_error
    assert "edit 1: old_text was not found in m.py." in out.content
    assert "line 2, 100% similar (same text, different indentation or whitespace)" in out.content
    assert "     3\t        return compute(1, 2)" in out.content
    nothing = await call(
        "edit_file", path="m.py", edits=[{"old_text": "zzzz qqqq", "new_text": "a"}]
    )
    assert "Read the file again" in nothing.content
    empty = await call("edit_file", path="m.py", edits=[{"old_text": "", "new_text": "a"}])
    assert empty.is_error and "old_text is empty" in empty.content
    none = await call("edit_file", path="m.py", edits=[])
    assert none.is_error and "edits" in none.content


async def test_edit_file_crlf(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    (ws / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    out = await call(
        "edit_file", path="w.txt", edits=[{"old_text": "one\ntwo", "new_text": "1\n2"}]
    )
    assert not out.is_error, out
    assert (ws / "w.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


async def test_list_dir_respects_gitignore(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "a.py").write_text("a")
    (ws / "build").mkdir()
    (ws / ".git").mkdir()
    (ws / "notes.log").write_text("x" * 3000)
    (ws / ".gitignore").write_text("build/\n*.log\n")
    out = await call("list_dir")
    lines = out.content.splitlines()
    assert lines[0] == "./"
    assert "src/" in lines and ".gitignore  (13 B)" in lines
    assert not any("build" in line or "notes.log" in line or ".git/" in line for line in lines)
    assert lines[-1] == "[3 ignored entries not shown]"
    deep = await call("list_dir", depth=3)
    assert "    a.py  (1 B)" in deep.content.splitlines()
    shown = await call("list_dir", show_ignored=True)
    assert "build/" in shown.content and "notes.log  (2.9 KB)" in shown.content
    assert (await call("list_dir", path="src/pkg/a.py")).is_error


@pytest.fixture
def repo(ws: Path) -> Path:
    files = {
        ".gitignore": "*.log\n/build/\ndata/**/*.csv\n!keep.log\nsecret*\n",
        "src/app.py": "import os\n\ndef handler():\n    return os.getcwd()  # TODO\n",
        "src/util.py": "def helper():\n    pass  # todo later\n",
        "src/nested/.gitignore": "gen_*.py\n",
        "src/nested/gen_x.py": "TODO generated\n",
        "src/nested/real.py": "TODO real\n",
        "build/out.py": "TODO built\n",
        "docs/build/page.md": "TODO not the root build\n",
        "run.log": "TODO log\n",
        "keep.log": "TODO kept\n",
        "data/a/b/x.csv": "TODO,csv\n",
        "data/top.csv": "TODO,top\n",
        "secret.txt": "TODO secret\n",
        "node_modules/dep/index.js": "TODO dep\n",
        "blob.bin": "TODO\x00binary",
    }
    for name, text in files.items():
        path = ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ws


async def test_grep_respects_gitignore(repo: Path, call) -> None:  # type: ignore[no-untyped-def]
    out = await call("grep", pattern="TODO")
    files = sorted({line.split(":", 1)[0] for line in out.content.splitlines()})
    assert files == ["docs/build/page.md", "keep.log", "src/app.py", "src/nested/real.py"]
    assert "src/app.py:4:     return os.getcwd()  # TODO" in out.content.splitlines()
    ci = await call("grep", pattern="todo", ignore_case=True, include="*.py")
    assert sorted(line.split(":", 1)[0] for line in ci.content.splitlines()) == [
        "src/app.py",
        "src/nested/real.py",
        "src/util.py",
    ]
    ctx_lines = await call("grep", pattern="def handler", context_lines=1, path="src")
    assert ctx_lines.content.splitlines() == [
        "src/app.py-2- ",
        "src/app.py:3: def handler():",
        "src/app.py-4-     return os.getcwd()  # TODO",
    ]
    bad = await call("grep", pattern="(unclosed")
    assert bad.is_error and "invalid regular expression" in bad.content
    none = await call("grep", pattern="NOPE_NOT_HERE")
    assert none.content == "No matches for 'NOPE_NOT_HERE' in ."


async def test_grep_caps_results(ws: Path, call) -> None:  # type: ignore[no-untyped-def]
    for i in range(30):
        (ws / f"f{i:02}.txt").write_text("hit\n" * 10)
    out = await call("grep", pattern="hit", max_results=25)
    lines = out.content.splitlines()
    assert len(lines) == 26
    assert (
        lines[-1]
        == "[25 of 300 matching lines in 30 files shown; narrow the pattern, path or include]"
    )


async def test_glob(repo: Path, call) -> None:  # type: ignore[no-untyped-def]
    py = await call("glob", pattern="**/*.py")
    assert py.content.splitlines() == ["src/app.py", "src/nested/real.py", "src/util.py"]
    top = await call("glob", pattern="*.log")
    assert top.content.splitlines() == ["keep.log"]
    in_src = await call("glob", pattern="*", path="src")
    assert in_src.content.splitlines() == ["app.py", "nested/", "util.py"]
    capped = await call("glob", pattern="**", max_results=2)
    assert capped.content.splitlines()[-1].startswith("[... ")
    assert (await call("glob", pattern="*.nothing")).content.startswith("No paths match")


async def test_update_plan_emits_event(call, events: list[object]) -> None:  # type: ignore[no-untyped-def]
    out = await call(
        "update_plan",
        items=[
            {"text": "read the code", "status": "done"},
            {"text": "fix the bug", "status": "in_progress"},
            {"text": "run tests"},
        ],
    )
    assert (
        out.content == "Plan updated (1/3 done):\n[x] read the code\n[>] fix the bug\n[ ] run tests"
    )
    assert events == [
        PlanChanged(
            (("read the code", "done"), ("fix the bug", "in_progress"), ("run tests", "pending"))
        )
    ]
    two = await call(
        "update_plan",
        items=[{"text": "a", "status": "in_progress"}, {"text": "b", "status": "in_progress"}],
    )
    assert two.is_error and "keep at most one in_progress" in two.content and len(events) == 1
    wrong = await call("update_plan", items=[{"text": "a", "status": "finished"}])
    assert wrong.is_error and "items.0.status" in wrong.content


def test_coding_tools_flags() -> None:
    tools = {t.name: t for t in coding_tools(sandbox="none")}
    assert list(tools) == [
        "read_file", "write_file", "edit_file", "list_dir", "glob", "grep", "run_shell", "update_plan"
    ]  # fmt: skip
    assert {n for n, t in tools.items() if t.read_only} == {
        "read_file", "list_dir", "glob", "grep", "update_plan"
    }  # fmt: skip
    assert {n for n, t in tools.items() if t.sequential} == {
        "write_file", "edit_file", "run_shell", "update_plan"
    }  # fmt: skip
    assert tools["run_shell"].shell_argument == "command"
