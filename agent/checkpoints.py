"""Checkpoints and rewind: every change the agent makes to the workspace can be undone.

Before a tool round that may change files (``write_file``, ``edit_file``, a ``run_shell``
command not known to be read-only) the loop snapshots the workspace, and again after it. A
snapshot is a commit in a *shadow* git repository, one per project, kept outside the workspace:
``<cache>/checkpoints/<sha256 of the workspace path>/`` (``$GEMMA_AGENT_CHECKPOINTS`` overrides
the folder; ``<cache>`` is `default_cache_dir`). The user's ``.git`` is never opened: git runs
with ``GIT_DIR``, ``GIT_WORK_TREE`` and ``GIT_INDEX_FILE`` pointing at the shadow repository,
without the system or global configuration, with hooks off and every attribute (eol, filters)
unset, so the user's index, HEAD, stash, hooks and config are untouched and the bytes stored are
the bytes on disk. ``.gitignore`` files are honoured; ``.git`` and ``.gemma-agent`` are left out,
and so are files larger than ``max_file_size`` (a notice says which). git's stat cache makes a
snapshot cost grow with what changed, not with the size of the repository.

The session log records each snapshot (``checkpoint`` records: the turn it belongs to, ``before``
or ``after``, the commit). What the agent changed is what changed inside a round (before → after);
what changed between rounds (after → next before, last after → now) was changed by someone else.
Rewinding to a point restores the files the agent changed since then — content, executable bit,
symlinks; created files are removed, deleted ones come back — and refuses to overwrite a file
someone else also changed since then unless forced. A rewind snapshots the workspace first, so
it can be undone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import AgentError

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024  # bytes; larger files are left out of snapshots
# Files one snapshot may add: a workspace that is a home folder or a data dump is not copied
# into the cache by accident (checkpoints turn off for it, with a notice that says why).
DEFAULT_MAX_FILES = 100_000
DEFAULT_MAX_AGE_DAYS = 30.0  # snapshots older than this are pruned (automatically, daily)
_PRUNE_EVERY = 24 * 3600.0
_EXCLUDE = "/.gemma-agent/\n"
_ATTRIBUTES = "* -text -filter -ident -eol -merge -crlf -export-subst -working-tree-encoding\n"
_REFS = "refs/checkpoints/"


class CheckpointError(AgentError):
    """The shadow repository could not do what was asked (git missing or failing)."""


class RewindConflict(AgentError):
    """A rewind would overwrite files someone else changed since the checkpoint (``conflicts``);
    nothing was changed. Pass ``force=True`` to restore them anyway (the rewind can be undone)."""

    def __init__(self, message: str, conflicts: Sequence[str]) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


def default_checkpoints_root() -> Path:
    """Where shadow repositories live: $GEMMA_AGENT_CHECKPOINTS, else <cache>/checkpoints."""
    env = os.environ.get("GEMMA_AGENT_CHECKPOINTS")
    if env:
        return Path(env)
    from .paths import default_cache_dir

    return default_cache_dir() / "checkpoints"


def git_available() -> bool:
    return shutil.which("git") is not None


@dataclass(frozen=True, slots=True)
class Snapshot:
    commit: str
    left_out: tuple[str, ...] = ()  # files too large to keep (relative paths)


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    added: int  # lines (0 for binary files)
    removed: int
    status: Literal["restore", "remove", "modify"]  # what a rewind does to it


class CheckpointStore:
    """The shadow git repository of one workspace. Thread-safe and process-safe (a file lock
    guards every operation; a lock file left by a killed git is removed)."""

    def __init__(
        self,
        workspace: str | Path,
        *,
        root: str | Path | None = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        max_age_days: float | None = DEFAULT_MAX_AGE_DAYS,
        exclude: Iterable[str | Path] = (),
        max_files: int = DEFAULT_MAX_FILES,
    ) -> None:
        self.workspace = Path(workspace).resolve()
        self.max_files = max_files
        # Folders never snapshotted or restored (the agent's own files: its session logs).
        self.exclude: list[str] = []
        for folder in exclude:
            path = Path(folder).resolve()
            if path != self.workspace and self.workspace in path.parents:
                self.exclude.append(path.relative_to(self.workspace).as_posix())
        self._excluded = False
        digest = hashlib.sha256(str(self.workspace).encode()).hexdigest()[:16]
        self.path = Path(root or default_checkpoints_root()) / digest
        self.git_dir = self.path / "git"
        self.max_file_size = max_file_size
        self.max_age_days = max_age_days
        self._env: dict[str, str] | None = None
        self._left_out: set[str] = set()

    # -- git plumbing ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        if self._env is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
            env.update(
                GIT_DIR=str(self.git_dir),
                GIT_WORK_TREE=str(self.workspace),
                GIT_INDEX_FILE=str(self.path / "index"),
                GIT_CONFIG_NOSYSTEM="1",
                GIT_CONFIG_GLOBAL=os.devnull,
                GIT_LITERAL_PATHSPECS="1",
                GIT_TERMINAL_PROMPT="0",
                GIT_AUTHOR_NAME="gemma-agent",
                GIT_AUTHOR_EMAIL="checkpoints@gemma-agent",
                GIT_COMMITTER_NAME="gemma-agent",
                GIT_COMMITTER_EMAIL="checkpoints@gemma-agent",
                LC_ALL="C",
            )
            self._env = env
        return self._env

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        try:
            done = subprocess.run(
                ["git", "-c", "core.hooksPath=" + os.devnull, *args],
                input=input,
                capture_output=True,
                env=self.env(),
                cwd=self.workspace,
                check=False,
            )
        except FileNotFoundError as e:
            raise CheckpointError("checkpoints need the git binary on PATH") from e
        if check and done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise CheckpointError(f"git {args[0]} failed in {self.git_dir}: {err}")
        return done.stdout

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store's lock; creates the repository on first use, clears stale git locks."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                self._ensure()
                self._clear_stale_locks()
                if not self._excluded:
                    self._exclude_folders()
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _ensure(self) -> None:
        if (self.git_dir / "HEAD").is_file() and (self.git_dir / "info" / "attributes").is_file():
            return
        self.git("init", "-q", "--template=", str(self.git_dir))
        for key, value in (
            ("core.hooksPath", os.devnull),
            ("core.autocrlf", "false"),
            ("core.safecrlf", "false"),
            ("core.filemode", "true"),
            ("core.symlinks", "true"),
            ("core.quotepath", "false"),
            ("core.fsmonitor", "false"),
            ("core.untrackedCache", "true"),
            ("core.splitIndex", "false"),
            ("index.version", "4"),
            ("gc.auto", "0"),
            ("commit.gpgSign", "false"),
            ("advice.addEmbeddedRepo", "false"),
            ("workspace.path", str(self.workspace)),
        ):
            self.git("config", key, value)
        info = self.git_dir / "info"
        info.mkdir(exist_ok=True)
        (info / "exclude").write_text(_EXCLUDE, encoding="utf-8")
        (info / "attributes").write_text(_ATTRIBUTES, encoding="utf-8")  # last: marks "ready"

    def _exclude_folders(self) -> None:
        exclude_file = self.git_dir / "info" / "exclude"
        lines = set(exclude_file.read_text(encoding="utf-8").splitlines())
        new = [f for f in self.exclude if "/" + _escape_ignore(f) + "/" not in lines]
        if new:
            with open(exclude_file, "a", encoding="utf-8") as f:
                f.writelines("/" + _escape_ignore(p) + "/\n" for p in new)
            self.git("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *new)
            (self.path / "last").unlink(missing_ok=True)  # the index changed
        self._excluded = True

    def _clear_stale_locks(self) -> None:
        """We hold the store's lock, so a git lock file here is a leftover of a killed git."""
        (self.path / "index.lock").unlink(missing_ok=True)
        for lock in (self.git_dir / "refs").rglob("*.lock"):
            lock.unlink(missing_ok=True)
        for name in ("packed-refs.lock", "config.lock", "HEAD.lock", "shallow.lock"):
            (self.git_dir / name).unlink(missing_ok=True)

    # -- snapshots -------------------------------------------------------------------------

    def snapshot(self, message: str = "checkpoint") -> Snapshot:
        """Record the workspace as it is now; returns the commit (the same one when nothing
        changed since the last snapshot)."""
        with self.locked():
            self._maybe_prune()
            out = self.git(
                "ls-files", "-z", "--modified", "--deleted", "--others", "--exclude-standard"
            )
            paths = sorted({p for p in out.decode("utf-8", "surrogateescape").split("\0") if p})
            if len(paths) > self.max_files:
                raise CheckpointError(
                    f"{len(paths)} files changed or new in {self.workspace} (more than "
                    f"{self.max_files}): not snapshotted. Add the bulk to a .gitignore, or work "
                    "in a smaller folder, for checkpoints to cover it"
                )
            last = self._read("last")
            if not paths and len(last.split()) == 2:
                return Snapshot(last.split()[1])  # the index is the last snapshot: unchanged
            # The index changes now: until the new snapshot is written, "last" says nothing
            # (a process killed in between must not take the old one for the index).
            (self.path / "last").unlink(missing_ok=True)
            left_out = self._drop_large(paths)
            if paths:
                spec = "\0".join(paths).encode("utf-8", "surrogateescape")
                self.git(
                    "add", "-A", "--ignore-errors", "--pathspec-from-file=-",
                    "--pathspec-file-nul", input=spec, check=False,
                )  # fmt: skip
            tree = self.git("write-tree").decode().strip()
            if last and last.split()[0] == tree:
                self._write("last", last)
                return Snapshot(last.split()[1], left_out)
            commit = self.git("commit-tree", tree, "-m", message).decode().strip()
            self.git("update-ref", _REFS + commit, commit)
            self._write("last", f"{tree} {commit}")
            return Snapshot(commit, left_out)

    def _drop_large(self, paths: list[str]) -> tuple[str, ...]:
        """Leave out (and stop tracking) listed files above the size cap; they stay excluded."""
        if self.max_file_size <= 0:
            return ()
        large: list[str] = []
        for p in paths:
            try:
                st = os.lstat(self.workspace / p)
            except OSError:
                continue
            if st.st_size > self.max_file_size and not os.path.islink(self.workspace / p):
                large.append(p)
        if not large:
            return ()
        for p in large:
            paths.remove(p)
        with open(self.git_dir / "info" / "exclude", "a", encoding="utf-8") as f:
            for p in large:
                f.write("/" + _escape_ignore(p) + "\n")
        self.git(
            "rm", "-q", "--cached", "--ignore-unmatch", "--pathspec-from-file=-",
            "--pathspec-file-nul", input="\0".join(large).encode("utf-8", "surrogateescape"),
        )  # fmt: skip
        new = tuple(p for p in large if p not in self._left_out)
        self._left_out.update(large)
        return new

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    def _write(self, name: str, text: str) -> None:
        tmp = self.path / f"{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path / name)

    # -- reading ---------------------------------------------------------------------------

    def changed(self, a: str, b: str) -> set[str]:
        """Paths that differ between two snapshots."""
        if a == b:
            return set()
        out = self.git("diff-tree", "-r", "-z", "--no-renames", "--name-only", a, b)
        return {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}

    def changes(self, target: str, now: str, paths: Iterable[str]) -> list[FileChange]:
        """What restoring ``paths`` from ``target`` does to the workspace as snapshot ``now``."""
        wanted = sorted(paths)
        if not wanted or target == now:
            return []
        with self.locked():
            raw = self._diff(["--name-status"], now, target, set(wanted))
            stat = self._diff(["--numstat"], target, now, set(wanted))
        kinds = {raw[i + 1]: raw[i][:1] for i in range(0, len(raw) - 1, 2)}
        numbers: dict[str, tuple[int, int]] = {}
        for line in stat:
            added, removed, path = line.split("\t", 2)
            numbers[path] = (_int(added), _int(removed))
        out = []
        for path, kind in sorted(kinds.items()):
            # now → target: D = the file is not in the target (created since): remove it;
            # A = the file is only in the target (deleted since): restore it.
            status: Literal["restore", "remove", "modify"] = (
                "remove" if kind == "D" else "restore" if kind == "A" else "modify"
            )
            plus, minus = numbers.get(path, (0, 0))
            out.append(FileChange(path, plus, minus, status))
        return out

    def _diff(self, options: list[str], a: str, b: str, wanted: set[str]) -> list[str]:
        """diff-tree records of ``wanted`` paths ("M", "path" pairs for --name-status)."""
        out = self.git("diff-tree", "-r", "-z", "--no-renames", *options, a, b)
        parts = [p for p in out.decode("utf-8", "surrogateescape").split("\0")]
        if "--numstat" in options:
            return [rec for rec in parts if rec and rec.split("\t", 2)[-1] in wanted]
        keep: list[str] = []
        for i in range(0, len(parts) - 1, 2):
            if parts[i + 1] in wanted:
                keep += [parts[i], parts[i + 1]]
        return keep

    def diff_text(self, target: str, now: str, paths: Iterable[str]) -> str:
        """A unified diff of what a rewind changes: from the workspace now to the checkpoint."""
        wanted = sorted(paths)
        if not wanted:
            return ""
        out = self.git("diff", "--no-color", "--no-renames", "--no-ext-diff", now, target, "--",
                       *wanted)  # fmt: skip
        return out.decode("utf-8", "replace")

    def files_in(self, commit: str, paths: Iterable[str]) -> set[str]:
        wanted = sorted(paths)
        if not wanted:
            return set()
        out = self.git("ls-tree", "-r", "-z", "--name-only", commit, "--", *wanted)
        return {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}

    # -- restoring -------------------------------------------------------------------------

    def restore(self, commit: str, paths: Iterable[str]) -> None:
        """Put ``paths`` back as they are in ``commit``: files absent there are removed (and
        folders left empty by that), the others get their content, mode or link back."""
        wanted = sorted(set(paths))
        if not wanted:
            return
        with self.locked():
            present = self.files_in(commit, wanted)
            for p in wanted:
                if p in present:
                    continue
                target = self.workspace / p
                if target.is_symlink() or target.is_file():
                    target.unlink()
                elif target.is_dir():
                    shutil.rmtree(target)
                self._remove_empty_parents(target)
            if present:
                for p in present:  # a folder now where the checkpoint has a file
                    target = self.workspace / p
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                spec = "\0".join(sorted(present)).encode("utf-8", "surrogateescape")
                (self.path / "last").unlink(missing_ok=True)  # checkout rewrites the index
                self.git(
                    "checkout", "-q", "-f", commit, "--pathspec-from-file=-",
                    "--pathspec-file-nul", input=spec,
                )  # fmt: skip

    def _remove_empty_parents(self, path: Path) -> None:
        parent = path.parent
        while parent != self.workspace and self.workspace in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent

    # -- pruning ---------------------------------------------------------------------------

    def refs(self) -> list[tuple[str, float]]:
        """Every kept snapshot and its time, oldest first."""
        out = self.git(
            "for-each-ref", "--format=%(objectname) %(committerdate:unix)", _REFS
        ).decode()
        refs = [(c, float(t)) for c, t in (line.split() for line in out.splitlines() if line)]
        return sorted(refs, key=lambda r: r[1])

    def prune(self, *, older_than_days: float | None = None, everything: bool = False) -> int:
        """Drop snapshots older than ``older_than_days`` (all with ``everything``); returns how
        many were dropped. Their objects are garbage-collected."""
        with self.locked():
            return self._prune(older_than_days, everything)

    def _prune(self, older_than_days: float | None, everything: bool) -> int:
        cutoff = time.time() - (older_than_days or 0) * 86400
        drop = [c for c, t in self.refs() if everything or t < cutoff]
        if drop:
            script = "".join(f"delete {_REFS}{c}\n" for c in drop).encode()
            self.git("update-ref", "--stdin", input=script)
            if everything or set(self._read("last").split()[-1:]) & set(drop):
                (self.path / "last").unlink(missing_ok=True)
            self.git("reflog", "expire", "--expire=now", "--all", check=False)
            self.git("gc", "-q", "--prune=now", check=False)
        self._write("pruned", str(time.time()))
        return len(drop)

    def _maybe_prune(self) -> None:
        if self.max_age_days is None:
            return
        stamp = self._read("pruned")
        if stamp and time.time() - float(stamp or 0) < _PRUNE_EVERY:
            return
        if not stamp:  # a new store: nothing to prune yet
            self._write("pruned", str(time.time()))
            return
        self._prune(self.max_age_days, False)

    def size(self) -> int:
        """Bytes on disk."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _escape_ignore(path: str) -> str:
    out = []
    for ch in path:
        if ch in "*?[]\\!# ":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


# -- the conversation side: points, plans ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A point of a conversation the session can rewind to.

    ``kind`` "message": just before a user message was sent (the conversation is cut before it);
    "round": just before a tool round that changed files. ``commit`` is the workspace snapshot
    a code rewind restores (None: the agent changed nothing since). ``changes``: what a code
    rewind would do now (files, +/- lines), filled by `Agent.checkpoints`.
    """

    index: int  # 1-based, what ``rewind(to=...)`` and ``--to`` take
    kind: Literal["message", "round"]
    anchor: str  # the message or turn id the point sits before
    title: str
    commit: str | None
    step: int | None = None
    created: float | None = None
    changes: tuple[FileChange, ...] = ()


@dataclass(frozen=True, slots=True)
class RewindResult:
    """What a rewind did (or, with ``dry_run``, would do)."""

    checkpoint: Checkpoint
    code: bool
    conversation: bool
    changes: tuple[FileChange, ...]  # files restored or removed
    conflicts: tuple[str, ...]  # files someone else changed since (restored only with force)
    messages_dropped: int  # messages cut from the conversation (kept in the log)
    diff: str  # unified diff: from the workspace now to the checkpoint
    dry_run: bool = False
    undo_commit: str | None = None  # snapshot taken before the rewind (undo restores it)
    prompt: str | None = None  # a rewound user message's text (a face puts it back to edit)


@dataclass
class Timeline:
    """A session's checkpoint records, in log order, as the loop and the log write them:
    ``{"type": "user", "id"}``, ``{"type": "checkpoint", "anchor", "phase", "commit", ...}``,
    ``{"type": "rewind", ...}`` and ``{"type": "rewind_undo"}``."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def intervals(self) -> list[tuple[int, str, str | None]]:
        """Agent changes as (position, before commit, after commit or None), in order: each
        round, and each code rewind (its own changes to the files)."""
        out: list[tuple[int, str, str | None]] = []
        open_: dict[str, int] = {}
        for i, r in enumerate(self.records):
            kind = r.get("type")
            if kind == "checkpoint" and r.get("phase") == "before":
                open_[str(r["anchor"])] = len(out)
                out.append((i, str(r["commit"]), None))
            elif kind == "checkpoint" and r.get("phase") == "after":
                j = open_.pop(str(r["anchor"]), None)
                if j is not None:
                    out[j] = (out[j][0], out[j][1], str(r["commit"]))
            elif kind in ("rewind", "rewind_undo") and r.get("before") and r.get("after"):
                out.append((i, str(r["before"]), str(r["after"])))
        return out

    def points(self, history_ids: Sequence[str], titles: dict[str, str]) -> list[Checkpoint]:
        """The points whose anchor is still in the conversation, in order (``history_ids``:
        the ids of the messages in the history; user messages there are points too)."""
        in_history = set(history_ids)
        raw: list[tuple[int, str, str, str | None, dict[str, Any]]] = []  # pos, kind, anchor...
        pending: list[int] = []  # user points still waiting for a later snapshot
        seen_users: set[str] = set()
        rounds: set[str] = set()
        for i, r in enumerate(self.records):
            kind = r.get("type")
            if kind == "user":
                if str(r["id"]) in seen_users:
                    continue
                seen_users.add(str(r["id"]))
                pending.append(len(raw))
                raw.append((i, "message", str(r["id"]), None, r))
            elif kind == "checkpoint" and r.get("phase") == "before":
                commit = str(r["commit"])
                for j in pending:
                    pos, k, anchor, _, rec = raw[j]
                    raw[j] = (pos, k, anchor, commit, rec)
                pending = []
                anchor = str(r["anchor"])
                if anchor not in rounds:
                    rounds.add(anchor)
                    raw.append((i, "round", anchor, commit, r))
            elif kind in ("rewind", "rewind_undo") and r.get("after"):
                # the state after a rewind is the code state of a later point without a snapshot
                for j in pending:
                    pos, k, anchor, _, rec = raw[j]
                    raw[j] = (pos, k, anchor, str(r["after"]), rec)
                pending = []
        out: list[Checkpoint] = []
        order = {mid: n for n, mid in enumerate(history_ids)}
        for _, point_kind, point_anchor, point_commit, rec in raw:
            if point_anchor not in in_history:
                continue
            out.append(
                Checkpoint(
                    index=0,
                    kind=point_kind,  # type: ignore[arg-type]
                    anchor=point_anchor,
                    title=titles.get(point_anchor) or str(rec.get("title") or ""),
                    commit=point_commit,
                    step=rec.get("step"),
                    created=rec.get("time"),
                )
            )
        out.sort(key=lambda c: order[c.anchor])
        return [
            Checkpoint(n, c.kind, c.anchor, c.title, c.commit, c.step, c.created)
            for n, c in enumerate(out, 1)
        ]

    def position(self, point: Checkpoint) -> int:
        """Where the point's snapshot sits in the records (changes after it are undone)."""
        for i, r in enumerate(self.records):
            if (
                r.get("type") == "checkpoint"
                and r.get("phase") == "before"
                and (
                    r.get("commit") == point.commit
                    and (point.kind == "message" or r.get("anchor") == point.anchor)
                )
            ):
                return i
            if r.get("type") in ("rewind", "rewind_undo") and r.get("after") == point.commit:
                return i + 1 if point.kind == "message" else i
        return len(self.records)


def plan_rewind(
    store: CheckpointStore, timeline: Timeline, target: str, position: int, now: str
) -> tuple[set[str], set[str]]:
    """The files to restore from ``target`` (changed by the agent after ``position``) and the
    conflicts among them (also changed by someone else since then)."""
    agent: set[str] = set()
    other: set[str] = set()
    later = [iv for iv in timeline.intervals() if iv[0] >= position]
    for n, (_, before, after) in enumerate(later):
        following = later[n + 1][1] if n + 1 < len(later) else now
        if after is None:  # cut off (a crash): count it all as the agent's
            agent |= store.changed(before, following)
            continue
        agent |= store.changed(before, after)
        other |= store.changed(after, following)
    if not later:
        return set(), set()
    restore = agent & store.changed(target, now)
    return restore, restore & other


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "Checkpointer",
    "FileChange",
    "RewindConflict",
    "RewindResult",
    "Snapshot",
    "Timeline",
    "default_checkpoints_root",
    "git_available",
    "mutating",
    "plan_rewind",
]


class Checkpointer:
    """The loop's side: snapshots before and after each tool round that may change files, for
    one conversation (its `Timeline`). A failing snapshot never stops the run: it turns
    checkpoints off for the conversation, with a notice."""

    def __init__(self, store: CheckpointStore, timeline: Timeline) -> None:
        self.store = store
        self.timeline = timeline
        self.broken: str | None = None
        self._open: set[str] = set()

    def take(self, anchor: str, phase: str, **extra: Any) -> tuple[dict[str, Any], Snapshot]:
        if phase == "after" and anchor not in self._open:
            raise LookupError(anchor)
        snap = self.store.snapshot(f"{phase} {anchor}")
        if phase == "before":
            self._open.add(anchor)
        else:
            self._open.discard(anchor)
        record = {
            "type": "checkpoint", "anchor": anchor, "phase": phase, "commit": snap.commit,
            "time": time.time(), **extra,
        }  # fmt: skip
        self.timeline.records.append(record)
        return record, snap


def mutating(calls: Sequence[Any], registry: Any) -> bool:
    """Whether any call of a round may change files: a tool not marked read-only, except shell
    commands known to only read."""
    from ..tools.commands import read_only_command

    for call in calls:
        tool = registry.get(call.name)
        if tool is None or tool.reads_only(call.arguments):
            continue
        arg = getattr(tool, "shell_argument", None)
        if arg is not None:
            command = call.arguments.get(arg) if isinstance(call.arguments, dict) else None
            if isinstance(command, str) and read_only_command(command):
                continue
        return True
    return False
