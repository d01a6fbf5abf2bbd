"""Every way out of the workspace we could think of is refused (tools included)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gemma_agent.errors import ConfigError
from gemma_agent.tools import PathOutsideWorkspace, ToolContext, ToolRegistry, Workspace
from gemma_agent.tools.builtin import coding_tools


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    ws = tmp_path / "ws"
    (ws / "a" / "b" / "c").mkdir(parents=True)
    (ws / "sub").mkdir()
    (ws / "inside.txt").write_text("inside\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET\n")
    secret_dir = tmp_path / "secret_dir"
    secret_dir.mkdir()
    (secret_dir / "key").write_text("KEY\n")
    evil = tmp_path / "ws-evil"  # shares the root's name as a prefix
    evil.mkdir()
    (evil / "x.txt").write_text("EVIL\n")
    os.symlink(secret_dir, ws / "link_out")  # absolute symlink to a folder outside
    os.symlink(outside, ws / "link_file")  # symlink to a file outside
    os.symlink(tmp_path / "not_there.txt", ws / "dangling")  # dangling, points outside
    os.symlink(ws / "chain2", ws / "chain1")
    os.symlink(outside, ws / "chain2")  # chain1 -> chain2 -> outside
    os.symlink("/", ws / "rootlink")
    os.symlink("..", ws / "sub" / "up")  # relative link: sub/up -> ws
    os.symlink("../..", ws / "sub" / "up2")  # relative link: sub/up2 -> tmp_path
    os.symlink(ws / "a" / "b" / "c", ws / "deep")  # inside, but .. after it climbs physically
    os.symlink(f"{ws}/../outside.txt", ws / "textual")  # target text starts with the root
    os.symlink("loop", ws / "loop")  # a loop
    os.symlink(ws, tmp_path / "ws_alias")  # the root reached through a symlink
    return {"ws": ws, "tmp": tmp_path, "outside": outside}


def escapes(p: dict[str, Path]) -> list[str | Path]:
    ws, tmp = p["ws"], p["tmp"]
    return [
        "..",  # 1
        "../",  # 2
        "../outside.txt",  # 3
        "a/../../outside.txt",  # 4
        "./../outside.txt",  # 5
        "a/b/../../../outside.txt",  # 6
        "/etc/passwd",  # 7
        str(p["outside"]),  # 8 absolute path outside
        "/",  # 9
        "//etc/passwd",  # 10
        f"{ws}/../outside.txt",  # 11 absolute through the root, then up
        f"{tmp}/ws-evil/x.txt",  # 12 sibling with the root's name as a prefix
        "link_out/key",  # 13 symlinked folder pointing outside
        "link_file",  # 14 symlinked file pointing outside
        "dangling",  # 15 dangling symlink: a write would create a file outside
        "chain1",  # 16 chain of symlinks ending outside
        "rootlink/etc/passwd",  # 17 symlink to /
        "sub/up/../outside.txt",  # 18 relative symlink then ..
        "sub/up2/outside.txt",  # 19 relative symlink two levels up
        "deep/../../../..",  # 20 .. after a symlink is physical, not lexical
        "textual",  # 21 symlink whose target text starts with the root path
        "~/.bashrc",  # 22 home
        "~root/.profile",  # 23 another user's home
        "/proc/self/root/etc/passwd",  # 24 /proc magic links
        "/proc/self/cwd/../outside.txt",  # 25
        "a\x00/../../outside.txt",  # 26 NUL byte
        "../" * 30 + "etc/passwd",  # 27 deep climb
        "loop",  # 28 symlink loop
        Path("..") / "outside.txt",  # 29 a Path object
        f"{tmp}/ws_alias/../outside.txt",  # 30 the root through an alias, then up
        "a/b/c/../../../../secret_dir/key",  # 31
        "link_out/../outside.txt",  # 32
        "",  # 33 empty
    ]


def test_at_least_twenty_escapes_are_refused(layout: dict[str, Path]) -> None:
    ws = Workspace(layout["ws"])
    attempts = escapes(layout)
    assert len(set(map(str, attempts))) >= 30
    accepted = []
    for attempt in attempts:
        try:
            resolved = ws.resolve(attempt)
        except PathOutsideWorkspace as exc:
            assert str(exc), attempt
            continue
        accepted.append((attempt, resolved))
    assert accepted == []


def test_look_alikes_stay_inside(layout: dict[str, Path]) -> None:
    ws = Workspace(layout["ws"])
    root = ws.root
    assert ws.resolve(".") == root
    assert ws.resolve("a/../inside.txt") == root / "inside.txt"
    assert ws.resolve(str(root / "inside.txt")) == root / "inside.txt"
    assert ws.resolve("sub/up/inside.txt") == root / "inside.txt"  # a link that stays inside
    assert ws.resolve("deep/x") == root / "a" / "b" / "c" / "x"
    # Backslashes and unicode dots are ordinary file-name characters on POSIX.
    assert ws.resolve("..\\..\\etc").parent == root
    assert ws.resolve("\u2025/x").parent.parent == root
    assert ws.resolve("new/dir/file.txt") == root / "new" / "dir" / "file.txt"
    assert ws.display(root / "a" / "b") == "a/b"


def test_messages_say_what_to_do(layout: dict[str, Path]) -> None:
    ws = Workspace(layout["ws"])
    with pytest.raises(
        PathOutsideWorkspace, match=r"outside the workspace .*relative to the workspace root"
    ):
        ws.resolve("../outside.txt")
    with pytest.raises(PathOutsideWorkspace, match="symlink 'link_out'"):
        ws.resolve("link_out/key")
    with pytest.raises(PathOutsideWorkspace, match="'~' is not expanded"):
        ws.resolve("~/x")
    with pytest.raises(ConfigError, match="not a directory"):
        Workspace(layout["outside"])


async def test_file_tools_refuse_escapes_and_leave_outside_untouched(
    layout: dict[str, Path],
) -> None:
    registry = ToolRegistry(coding_tools(sandbox="none"))
    ctx = ToolContext(workspace=layout["ws"])
    calls = [
        ("read_file", {"path": "../outside.txt"}),
        ("read_file", {"path": "link_file"}),
        ("write_file", {"path": "link_file", "content": "PWNED"}),
        ("write_file", {"path": "dangling", "content": "PWNED"}),
        ("write_file", {"path": "../outside.txt", "content": "PWNED"}),
        ("edit_file", {"path": "chain1", "edits": [{"old_text": "SECRET", "new_text": "PWNED"}]}),
        ("list_dir", {"path": "link_out"}),
        ("glob", {"pattern": "*", "path": ".."}),
        ("glob", {"pattern": "../*"}),
        ("grep", {"pattern": "SECRET", "path": "/"}),
        ("grep", {"pattern": "KEY", "path": "rootlink/tmp"}),
    ]
    for name, args in calls:
        out = await registry.call(name, args, ctx)
        assert out.is_error and not out.crashed, (name, args, out)
    assert layout["outside"].read_text() == "SECRET\n"
    assert not (layout["tmp"] / "not_there.txt").exists()
    # grep from the root does not follow links out of the workspace.
    found = await registry.call("grep", {"pattern": "SECRET|KEY|EVIL"}, ctx)
    assert found.content.startswith("No matches"), found
