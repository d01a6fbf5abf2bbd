"""Checkpoints and rewind on real git repositories: the agent's changes are undone, the user's
repository (index, HEAD, stash, config) is untouched, user edits are never silently lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from gemma_agent import Agent, ScriptedEngine
from gemma_agent.agent.checkpoints import CheckpointStore, RewindConflict
from gemma_agent.agent.session import load_session
from gemma_agent.errors import ConfigError
from gemma_agent.tools.builtin import RunShell, edit_file, write_file
from gemma_agent.tools.commands import read_only_command

from .helpers import call


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="u", GIT_AUTHOR_EMAIL="u@x", GIT_COMMITTER_NAME="u",
               GIT_COMMITTER_EMAIL="u@x")  # fmt: skip
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A user repository with a commit, a stash, staged and unstaged changes, untracked and
    ignored files."""
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "app.py").write_text("def main():\n    return 1\n")
    (ws / "src" / "util.py").write_text("X = 1\n")
    (ws / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (ws / "run.sh").chmod(0o755)
    (ws / ".gitignore").write_text("*.log\n")
    git(ws, "init", "-q")
    git(ws, "add", ".")
    git(ws, "commit", "-qm", "base")
    (ws / "src" / "util.py").write_text("X = 2\n")
    git(ws, "stash", "-q")
    (ws / "src" / "util.py").write_text("X = 3  # staged\n")
    git(ws, "add", "src/util.py")
    (ws / "src" / "app.py").write_text("def main():\n    return 2  # unstaged\n")
    (ws / "notes.txt").write_text("untracked\n")
    (ws / "debug.log").write_text("ignored\n")
    return ws


def user_repo_state(ws: Path) -> tuple[str, ...]:
    return (
        git(ws, "rev-parse", "HEAD"),
        git(ws, "status", "--porcelain", "--ignored"),
        git(ws, "diff", "--cached"),
        git(ws, "stash", "list"),
        git(ws, "config", "--local", "--list"),
        git(ws, "ls-files", "-s"),
    )


def make_agent(ws: Path, outputs: list[Any], tmp_path: Path, **kw: Any) -> Agent:
    return Agent(
        engine=ScriptedEngine(outputs),
        tools=[write_file, edit_file, RunShell(sandbox="none")],
        workspace=ws,
        compactor=None,
        approval="yolo",
        checkpoints_dir=tmp_path / "checkpoints",
        sessions_dir=tmp_path / "sessions",
        **kw,
    )


def tree(ws: Path) -> dict[str, str]:
    out = {}
    for p in sorted(ws.rglob("*")):
        rel = p.relative_to(ws).as_posix()
        if rel.startswith((".git/", ".gemma-agent")) or rel == ".git" or p.is_dir():
            continue
        out[rel] = os.readlink(p) if p.is_symlink() else p.read_text()
    return out


async def test_rewind_after_edit_and_new_file_restores_code_and_conversation(
    repo: Path, tmp_path: Path
) -> None:
    before_tree, before_git = tree(repo), user_repo_state(repo)
    agent = make_agent(
        repo,
        [
            call("edit_file", path="src/app.py",
                 edits=[{"old_text": "return 2", "new_text": "return 3"}]),
            call("write_file", path="pkg/new.py", content="NEW = 1\n"),
            "done",
        ],
        tmp_path,
    )  # fmt: skip
    result = await agent.run("change things")
    assert result.ok
    assert "return 3" in (repo / "src" / "app.py").read_text()
    assert (repo / "pkg" / "new.py").exists()
    points = await agent.checkpoints(result.session_id)
    assert [p.kind for p in points] == ["message", "round", "round"]
    first = points[0]
    assert {c.path: c.status for c in first.changes} == {
        "src/app.py": "modify",
        "pkg/new.py": "remove",
    }
    rewound = await agent.rewind(result.session_id, to=1)
    assert rewound.prompt == "change things"
    assert tree(repo) == before_tree
    assert not (repo / "pkg").exists()  # the folder it created is gone too
    assert user_repo_state(repo) == before_git  # index, HEAD, stash, config untouched
    assert agent.history(result.session_id) == []
    assert rewound.messages_dropped == len(result.turns)
    assert "-    return 3  # unstaged\n+    return 2  # unstaged" in rewound.diff


async def test_rewind_after_rm_rf_and_mv_brings_files_and_modes_back(
    repo: Path, tmp_path: Path
) -> None:
    os.symlink("src/app.py", repo / "link")
    before = tree(repo)
    agent = make_agent(
        repo,
        [
            call("run_shell", command="rm -rf src && mv run.sh moved.sh && rm link"),
            call("run_shell", command="ls -la && git status"),  # read-only: no snapshot
            "done",
        ],
        tmp_path,
    )
    result = await agent.run("clean up")
    assert not (repo / "src").exists() and (repo / "moved.sh").exists()
    points = await agent.checkpoints(result.session_id)
    assert [p.kind for p in points] == ["message", "round"]  # ls/git status took none
    await agent.rewind(result.session_id, to=2, conversation=False)
    assert tree(repo) == before
    assert os.access(repo / "run.sh", os.X_OK)
    assert (repo / "link").is_symlink() and os.readlink(repo / "link") == "src/app.py"
    assert len(agent.history(result.session_id)) == len(result.turns)  # code only


async def test_user_edit_between_steps_is_a_conflict_and_nothing_is_lost(
    repo: Path, tmp_path: Path
) -> None:
    agent = make_agent(
        repo,
        [call("write_file", path="src/util.py", content="AGENT = 1\n"), "first done",
         call("write_file", path="src/app.py", content="AGENT = 2\n"), "second done"],
        tmp_path,
    )  # fmt: skip
    sid = (await agent.run("one")).session_id
    (repo / "src" / "util.py").write_text("USER = 1\n")  # the user, between two agent steps
    await agent.run("two", session_id=sid)
    plan = await agent.rewind(sid, to=1, dry_run=True)
    assert plan.conflicts == ("src/util.py",)
    with pytest.raises(RewindConflict) as info:
        await agent.rewind(sid, to=1)
    assert info.value.conflicts == ("src/util.py",)
    assert (repo / "src" / "util.py").read_text() == "USER = 1\n"  # nothing changed
    assert (repo / "src" / "app.py").read_text() == "AGENT = 2\n"
    # Rewinding to the second message only undoes the second step: no conflict.
    points = await agent.checkpoints(sid)
    second = next(p for p in points if p.kind == "message" and p.title == "two")
    await agent.rewind(sid, to=second.index)
    assert (repo / "src" / "app.py").read_text().endswith("# unstaged\n")
    assert (repo / "src" / "util.py").read_text() == "USER = 1\n"
    # Forced, the user's edit is overwritten, and the undo brings it back.
    await agent.undo_rewind(sid)
    await agent.rewind(sid, to=1, force=True)
    assert (repo / "src" / "util.py").read_text() == "X = 3  # staged\n"
    await agent.undo_rewind(sid)
    assert (repo / "src" / "util.py").read_text() == "USER = 1\n"
    assert (repo / "src" / "app.py").read_text() == "AGENT = 2\n"


async def test_rewind_across_resume_and_undo_of_a_rewind(repo: Path, tmp_path: Path) -> None:
    outputs = [call("write_file", path="a.txt", content="agent\n"), "done"]
    agent = make_agent(repo, outputs, tmp_path)
    sid = (await agent.run("write a")).session_id
    await agent.aclose()
    # A new process: the session is rebuilt from its log, the checkpoints from the shadow repo.
    again = make_agent(repo, [], tmp_path)
    points = await again.checkpoints(sid)
    assert points[0].title == "write a" and points[0].changes[0].path == "a.txt"
    await again.rewind(sid, to=1, conversation=True)
    assert not (repo / "a.txt").exists()
    await again.aclose()
    state = load_session(again.session_file(sid))
    assert state.history == [] and len(state.rewinds) == 1  # the abandoned branch is kept
    third = make_agent(repo, [], tmp_path)
    assert third.open_session(sid) == []  # --resume shows the rewound state
    await third.undo_rewind(sid)
    assert (repo / "a.txt").read_text() == "agent\n"
    assert len(third.history(sid)) == 3
    await third.aclose()
    assert len(load_session(third.session_file(sid)).history) == 3
    with pytest.raises(ConfigError, match="Nothing to undo"):
        await make_agent(repo, [], tmp_path).undo_rewind(sid)


async def test_rewinds_are_undone_one_after_the_other(repo: Path, tmp_path: Path) -> None:
    """Two rewinds in a row, then two undos (the second in a new process): each undo takes back
    the latest rewind still in effect, files and conversation; a third finds none."""
    agent = make_agent(
        repo,
        [call("write_file", path="a.txt", content="one\n"), "first done",
         call("write_file", path="a.txt", content="two\n"), "second done"],
        tmp_path,
    )  # fmt: skip
    sid = (await agent.run("one")).session_id
    await agent.run("two", session_id=sid)
    full = agent.history(sid)
    second = next(p for p in await agent.checkpoints(sid) if p.title == "two")
    await agent.rewind(sid, to=second.index)
    assert (repo / "a.txt").read_text() == "one\n" and len(agent.history(sid)) == 3
    await agent.rewind(sid, to=1)
    assert not (repo / "a.txt").exists() and agent.history(sid) == []
    await agent.undo_rewind(sid)
    assert (repo / "a.txt").read_text() == "one\n" and len(agent.history(sid)) == 3
    await agent.aclose()
    again = make_agent(repo, [], tmp_path)
    assert len(again.open_session(sid)) == 3
    await again.undo_rewind(sid)
    assert (repo / "a.txt").read_text() == "two\n" and again.history(sid) == full
    with pytest.raises(ConfigError, match="Nothing to undo"):
        await again.undo_rewind(sid)
    await again.aclose()
    assert load_session(again.session_file(sid)).history == full


async def test_conversation_only_rewind_keeps_the_files(repo: Path, tmp_path: Path) -> None:
    agent = make_agent(repo, [call("write_file", path="a.txt", content="x\n"), "done"], tmp_path)
    sid = (await agent.run("write")).session_id
    result = await agent.rewind(sid, to=1, code=False)
    assert (repo / "a.txt").exists() and agent.history(sid) == []
    assert result.changes == ()


async def test_checkpoints_off_and_large_files_left_out(repo: Path, tmp_path: Path) -> None:
    off = make_agent(
        repo, [call("write_file", path="a.txt", content="x\n"), "done"], tmp_path, checkpoints=False
    )
    sid = (await off.run("write")).session_id
    assert not (tmp_path / "checkpoints").exists()
    with pytest.raises(ConfigError, match="off"):
        await off.checkpoints(sid)
    (repo / "big.bin").write_bytes(os.urandom(5000))
    agent = make_agent(
        repo,
        [call("write_file", path="a.txt", content="y\n"), "done"],
        tmp_path,
        checkpoint_max_file_size=4096,
    )
    notices = []
    await agent.run("write", on_event=lambda e: notices.append(e) if e.kind == "notice" else None)
    assert any("big.bin" in n.message for n in notices)


def test_shadow_repository_survives_kill_9_mid_checkpoint(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for i in range(300):
        (ws / f"f{i}.txt").write_text(f"{i}\n" * 200)
    root = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import sys, itertools
        from pathlib import Path
        from gemma_agent.agent.checkpoints import CheckpointStore
        s = CheckpointStore({str(ws)!r}, root={str(root)!r})
        for n in itertools.count():
            for i in range(0, 300, 7):
                Path({str(ws)!r}, f"f{{i}}.txt").write_text(f"{{n}}\\n" * 300)
            s.snapshot()
            print("snap", flush=True)
        """
    )
    for delay in (0.05, 0.3, 0.6):
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # one snapshot done: the next one is under way
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its git, mid-flight
        proc.wait()
    store = CheckpointStore(ws, root=root)
    (store.path / "index.lock").write_text("")  # as a killed `git add` leaves it
    first = store.snapshot().commit
    (ws / "f1.txt").write_text("changed\n")
    (ws / "new.txt").write_text("new\n")
    second = store.snapshot().commit
    assert store.changed(first, second) == {"f1.txt", "new.txt"}
    store.restore(first, store.changed(first, second))
    assert not (ws / "new.txt").exists() and (ws / "f1.txt").read_text() != "changed\n"
    fsck = store.git("fsck", "--no-dangling", check=False)
    assert b"error" not in fsck


def test_read_only_commands() -> None:
    for cmd in ("ls -la", "git status", "git diff HEAD~1", "grep -rn x src | head", "cat a b",
                "find . -name '*.py'", "rg foo 2>/dev/null"):  # fmt: skip
        assert read_only_command(cmd), cmd
    for cmd in ("rm -rf src", "ls > out.txt", "find . -delete", "git checkout .", "python x.py",
                "sed -i s/a/b/ f", "echo $(rm x)", "sort -o f f", "git branch new"):  # fmt: skip
        assert not read_only_command(cmd), cmd


async def test_cli_lists_dry_runs_rewinds_and_prunes(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMMA_AGENT_CHECKPOINTS", str(tmp_path / "cli-store"))
    agent = Agent(
        engine=ScriptedEngine([call("write_file", path="a.txt", content="agent\n"), "done"]),
        tools=[write_file], workspace=repo, compactor=None, approval="yolo",
    )  # fmt: skip
    sid = (await agent.run("write a")).session_id
    await agent.aclose()
    from gemma_agent.cli import main

    def cli(*argv: str) -> tuple[int, str]:
        code = await_in_thread(main, [*argv])
        return code, capsys.readouterr().out

    code, out = cli("rewind", sid, "--workspace", str(repo))
    assert code == 0 and "1  before message: 'write a'  [1 file(s) +1 -0]" in out
    code, out = cli("rewind", sid, "--to", "1", "--dry-run", "--workspace", str(repo))
    assert "remove   a.txt" in out and (repo / "a.txt").exists()
    code, out = cli("rewind", sid, "--to", "1", "--code-only", "--workspace", str(repo))
    assert code == 0 and not (repo / "a.txt").exists()
    code, out = cli("rewind", sid, "--undo", "--workspace", str(repo))
    assert code == 0 and (repo / "a.txt").exists()
    code, out = cli("checkpoints", "prune", "--all", "--workspace", str(repo))
    assert code == 0 and "pruned" in out and " 0 snapshot" not in out


def await_in_thread(fn: Any, argv: list[str]) -> int:
    """The CLI runs its own event loop: call it from a thread (this test has one running)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return int(pool.submit(fn, argv).result())


def test_a_huge_workspace_is_not_copied_into_the_cache(tmp_path: Path) -> None:
    from gemma_agent.agent.checkpoints import CheckpointError

    ws = tmp_path / "home"
    ws.mkdir()
    for i in range(5):
        (ws / f"f{i}.txt").write_text(str(i))
    store = CheckpointStore(ws, root=tmp_path / "shadow", max_files=3)
    with pytest.raises(CheckpointError, match="more than 3"):
        store.snapshot()
    (ws / ".gitignore").write_text("f*.txt\n")
    assert store.snapshot().commit  # ignored bulk: the rest fits
