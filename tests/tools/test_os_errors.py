"""Errors of the operating system caused by a tool's arguments are error results the model can act
on, never crashes: names too long, directories, paths through a file, symlink loops, NUL bytes,
text that is not unicode, permission denied, a full disk, files that vanish."""

from __future__ import annotations

import errno
import json
import os
import pathlib
from pathlib import Path
from typing import Any

import pytest
from gemma_agent.tools import SpillStore, ToolContext, ToolOutcome, ToolRegistry
from gemma_agent.tools.builtin import coding_tools, media_tools


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("hello\nworld\n")
    (root / "sub").mkdir()
    (root / "sub" / "b.py").write_text("x = 1\n")
    os.symlink("loop", root / "loop")
    return root


@pytest.fixture
def ctx(ws: Path, tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=ws, spill=SpillStore(tmp_path / "spill"))


@pytest.fixture
def call(ctx: ToolContext):  # type: ignore[no-untyped-def]
    registry = ToolRegistry([*coding_tools(sandbox="none"), *media_tools()], recall=True)

    async def _call(name: str, **arguments: Any) -> ToolOutcome:
        return await registry.call(name, arguments, ctx)

    return _call


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def refused(outcome: ToolOutcome, *phrases: str) -> str:
    """An error result (not a crash) that says each phrase."""
    assert not outcome.crashed, outcome.content
    assert outcome.is_error, outcome.content
    text = str(outcome.content)
    for phrase in phrases:
        assert phrase in text, text
    return text


LONG = "x" * 3000


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("list_dir", {"path": LONG}),
        ("read_file", {"path": LONG}),
        ("write_file", {"path": LONG, "content": "x"}),
        ("edit_file", {"path": LONG, "edits": [{"old_text": "a", "new_text": "b"}]}),
        ("glob", {"pattern": "*", "path": LONG}),
        ("grep", {"pattern": "x", "path": LONG}),
        ("view_image", {"path": LONG}),
        ("list_dir", {"path": "/".join(["y" * 200] * 25)}),  # each name fits, the path does not
    ],
)
async def test_names_too_long(call, name: str, arguments: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    text = refused(await call(name, **arguments), "bytes long", "shorter")
    assert len(text) < 600  # the 3,000 characters are not echoed back


async def test_directories_where_a_file_is_needed(call) -> None:  # type: ignore[no-untyped-def]
    refused(await call("read_file", path="sub"), "sub is a directory", "list_dir")
    refused(
        await call("edit_file", path="sub", edits=[{"old_text": "a", "new_text": "b"}]),
        "sub is a directory",
    )
    refused(await call("view_image", path="sub"), "sub is a directory")
    refused(await call("write_file", path="sub", content="x"), "sub is a directory", "sub/")


async def test_a_path_through_a_file(call, ws: Path) -> None:  # type: ignore[no-untyped-def]
    refused(await call("read_file", path="a.txt/b"), "a.txt is a file, not a folder")
    refused(await call("write_file", path="a.txt/b", content="x"), "a.txt is a file, not a folder")
    refused(await call("write_file", path="a.txt/b/c.txt", content="x"), "a.txt is a file")
    refused(await call("list_dir", path="a.txt/b"), "does not exist")
    refused(await call("grep", pattern="x", path="a.txt/b"), "a.txt is a file")
    assert (ws / "a.txt").read_text() == "hello\nworld\n"


@pytest.mark.parametrize("path", ["loop", "loop/x", "sub/../loop/y"])
async def test_symlink_loops(call, ws: Path, path: str) -> None:  # type: ignore[no-untyped-def]
    for name, extra in [
        ("read_file", {}),
        ("list_dir", {}),
        ("write_file", {"content": "x"}),
        ("glob", {"pattern": "*"}),
    ]:
        text = refused(await call(name, path=path, **extra), "symlink loop")
        assert str(ws) not in text  # says which link, not where the workspace lives


async def test_nul_bytes(call, ws: Path) -> None:  # type: ignore[no-untyped-def]
    refused(await call("read_file", path="a.txt\x00.py"), "NUL")
    refused(await call("write_file", path="new\x00.txt", content="x"), "NUL")
    refused(await call("list_dir", path="sub\x00"), "NUL")
    refused(await call("run_shell", command="echo a\x00b"), "NUL byte")
    assert names(ws) == ["a.txt", "loop", "sub"]


async def test_text_that_is_not_unicode(call, ws: Path) -> None:  # type: ignore[no-untyped-def]
    refused(await call("read_file", path="a\ud800.txt"), "not valid unicode")
    refused(await call("write_file", path="c.txt", content="x\ud800y"), "content", "position 1")
    refused(
        await call("edit_file", path="a.txt", edits=[{"old_text": "hello", "new_text": "\udcff"}]),
        "new_text",
    )
    assert (ws / "a.txt").read_text() == "hello\nworld\n"
    # A file name that is not UTF-8 is listed in a form every prompt and session file can hold.
    fd = os.open(os.path.join(os.fsencode(ws), b"bad\xffname.txt"), os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    for outcome in [await call("list_dir"), await call("glob", pattern="*")]:
        assert not outcome.is_error and "bad\\udcffname.txt" in outcome.content
        json.dumps(outcome.content, ensure_ascii=False).encode("utf-8")
    # An error that echoes such input is encodable too.
    outcome = await call("read_file", path="missing\udcff.txt")
    json.dumps(outcome.content, ensure_ascii=False).encode("utf-8")


def fail_for(monkeypatch: pytest.MonkeyPatch, method: str, name: str, code: int) -> None:
    """``Path.<method>`` raises OSError ``code`` for files called ``name`` (a simulation for
    what a test cannot provoke for real: root ignores mode bits, the disk is not full)."""
    real = getattr(pathlib.Path, method)

    def failing(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.name == name or self.name.startswith(f".{name}."):
            raise OSError(code, os.strerror(code), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, method, failing)


async def test_permission_denied(call, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fail_for(monkeypatch, "open", "a.txt", errno.EACCES)
    refused(await call("read_file", path="a.txt"), "cannot read a.txt: permission denied")
    fail_for(monkeypatch, "read_bytes", "a.txt", errno.EACCES)
    refused(
        await call("edit_file", path="a.txt", edits=[{"old_text": "hello", "new_text": "hi"}]),
        "cannot read a.txt: permission denied",
    )


async def test_disk_full(call, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fail_for(monkeypatch, "write_bytes", "a.txt", errno.ENOSPC)
    text = refused(
        await call("write_file", path="a.txt", content="new"),
        "no space left",
        "Nothing was written",
    )
    assert "cannot write a.txt" in text
    refused(
        await call("edit_file", path="a.txt", edits=[{"old_text": "hello", "new_text": "hi"}]),
        "no space left",
    )
    assert (ws / "a.txt").read_text() == "hello\nworld\n"  # untouched
    assert names(ws) == ["a.txt", "loop", "sub"]  # no temporary left


async def test_file_vanishes_while_read(call, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fail_for(monkeypatch, "open", "a.txt", errno.ENOENT)
    refused(await call("read_file", path="a.txt"), "a.txt does not exist", "list_dir or glob")


async def test_bad_patterns(call) -> None:  # type: ignore[no-untyped-def]
    refused(await call("glob", pattern="[z-a]"), "invalid glob pattern '[z-a]'")
    refused(await call("grep", pattern="a{99999999999}"), "invalid regular expression", "large")
    refused(await call("grep", pattern="(" * 5000 + "a" + ")" * 5000), "invalid regular expression")
    refused(await call("grep", pattern="x", include="sub/[z-a]"), "invalid include pattern")
    outcome = await call("grep", pattern="[[:alpha:]]")  # a FutureWarning, not an error
    assert not outcome.is_error


async def test_recall_output_when_the_spill_is_gone(call, ctx: ToolContext) -> None:  # type: ignore[no-untyped-def]
    spill_id = ctx.spill.put("one\ntwo\n", label="earlier")
    assert (await call("recall_output", spill_id=spill_id)).content.endswith("2\ttwo")
    refused(await call("recall_output", spill_id=spill_id, pattern="a{99999999999}"), "invalid")

    def broken(*args: Any, **kwargs: Any) -> Any:
        yield from ()
        raise OSError(errno.EIO, "Input/output error")

    ctx.spill.iter_lines = broken  # type: ignore[method-assign]
    refused(await call("recall_output", spill_id=spill_id), "can no longer be read")


async def test_any_tool_result_is_unicode_text(ctx: ToolContext) -> None:
    """A lone surrogate (a file name that is not UTF-8, echoed input) would break the prompt and
    the session file later: results carry it as an escape."""

    def names_on_disk() -> dict[str, list[str]]:
        return {"bad\udcffkey": ["x\ud800y"]}

    registry = ToolRegistry([names_on_disk])
    outcome = await registry.call("names_on_disk", {}, ctx)
    assert outcome.content == {"bad\\udcffkey": ["x\\ud800y"]}
    outcome = await registry.call("names_on_disk", {"extra\ud800": 1}, ctx)
    assert outcome.is_error
    json.dumps(outcome.content, ensure_ascii=False).encode("utf-8")
