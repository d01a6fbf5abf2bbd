"""Project context: AGENTS.md memory and skills, found on disk and put into the system turn.

Memory (``AGENTS.md``, the cross-agent convention), in this order, later files more specific:

1. the user's global file, ``~/.config/gemma-agent/AGENTS.md`` (``$XDG_CONFIG_HOME``);
2. from the repository root (the nearest folder above the workspace holding ``.git``; the
   workspace itself when there is none) down to the workspace, one ``AGENTS.md`` per folder.

Nested files below the workspace are not read up front: `NestedMemory` gives each to the model
once, after the result of the first tool call that works in its folder. The whole
memory is capped (`MEMORY_CAP_CHARS`): files past the cap are cut, and the system turn and a
`Notice` say so. Skills (``SKILL.md`` folders, ``tools/builtin/skills.py``) come from
``<workspace>/.gemma-agent/skills/`` and ``~/.config/gemma-agent/skills/`` (a project skill
wins over a user skill of the same name); only names and descriptions enter the system turn.

Everything is read once when a conversation's model layer is built, so the system turn, the
root of every cached prefix, stays byte-identical for the session.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..tools.approval import default_config_dir
from ..tools.builtin.skills import SKILL_FILE, Skill, load_skill

MEMORY_FILE = "AGENTS.md"
MEMORY_CAP_CHARS = 16_000  # ~4k tokens: small models do better with a short system turn
MAX_SKILLS = 64
_DESCRIPTION_CHARS = 300

Scope = Literal["user", "project", "given"]


@dataclass(frozen=True, slots=True)
class MemoryFile:
    """One memory file as loaded: ``text`` is what the system turn holds (maybe cut)."""

    path: Path
    scope: Scope
    text: str
    size: int  # characters in the file
    cut: bool = False


@dataclass(frozen=True, slots=True)
class ProjectContext:
    """What a conversation's system turn holds besides the instructions."""

    memory: tuple[MemoryFile, ...] = ()
    skills: tuple[Skill, ...] = ()  # malformed ones included (with their error)
    notices: tuple[str, ...] = ()  # said once per run start (a cut memory, a bad skill)
    agent_types: tuple[Any, ...] = ()  # agent.subagents.AgentType: what the task tool runs
    agent_problems: tuple[str, ...] = ()  # agent files left out, and why (also in notices)

    @property
    def usable_skills(self) -> tuple[Skill, ...]:
        return tuple(s for s in self.skills if s.error is None)

    def system_text(self, instructions: str | None) -> str | None:
        """The system text: instructions, then the memory, then the skill list."""
        parts = [instructions.strip()] if instructions and instructions.strip() else []
        if self.memory:
            lines = [
                "# Project memory (AGENTS.md)",
                "Conventions and facts about this project and user. Follow them.",
            ]
            for m in self.memory:
                lines += ["", f"## {m.path}", m.text.strip()]
            parts.append("\n".join(lines))
        skills = self.usable_skills
        if skills:
            lines = [
                "# Skills",
                "Instructions for particular kinds of task. Before starting a task a skill "
                "covers, load it with the `skill` tool (skill(name=...)).",
                "",
            ]
            lines += [f"- {s.name}: {_short(s.description)}" for s in skills]
            parts.append("\n".join(lines))
        return "\n\n".join(parts) if parts else None


def _short(text: str) -> str:
    return text if len(text) <= _DESCRIPTION_CHARS else text[: _DESCRIPTION_CHARS - 1] + "…"


def repository_root(workspace: Path) -> Path:
    """The nearest folder at or above ``workspace`` holding ``.git``; else the workspace."""
    workspace = workspace.resolve()
    for folder in (workspace, *workspace.parents):
        if (folder / ".git").exists():
            return folder
    return workspace


def memory_paths(workspace: Path, config_dir: Path | None = None) -> list[tuple[Path, Scope]]:
    """Where memory files are looked for, general first (the user's, then root → workspace)."""
    workspace = workspace.resolve()
    root = repository_root(workspace)
    config = config_dir if config_dir is not None else default_config_dir()
    out: list[tuple[Path, Scope]] = [(config / MEMORY_FILE, "user")]
    chain = [workspace]
    while chain[-1] != root:
        chain.append(chain[-1].parent)
    out += [(folder / MEMORY_FILE, "project") for folder in reversed(chain)]
    return out


def load_memory(
    candidates: Sequence[tuple[Path, Scope]], cap: int = MEMORY_CAP_CHARS
) -> tuple[list[MemoryFile], list[str]]:
    """The files that exist, cut to ``cap`` characters in all (the most specific files, last
    in the list, are kept whole first); and notices about what was cut or unreadable."""
    found: list[tuple[Path, Scope, str]] = []
    notices: list[str] = []
    seen: set[Path] = set()
    for path, scope in candidates:
        real = path.resolve()
        if real in seen or not path.is_file():
            continue
        seen.add(real)
        try:
            found.append((path, scope, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            notices.append(f"memory file {path} cannot be read: {e}")
    room = cap
    kept: list[MemoryFile] = []
    for path, scope, text in reversed(found):  # the most specific file gets the room first
        if len(text) <= room:
            kept.append(MemoryFile(path, scope, text, len(text)))
            room -= len(text)
            continue
        head = text[: max(room, 0)]
        marker = (
            f"\n[… cut: {len(text) - len(head)} more characters of {path} not loaded "
            f"(memory cap {cap} characters)]"
        )
        kept.append(MemoryFile(path, scope, head + marker, len(text), cut=True))
        notices.append(
            f"memory file {path} was cut to {len(head)} of {len(text)} characters "
            f"(the memory cap is {cap}); shorten it"
        )
        room = 0
    kept.reverse()
    return kept, notices


def skill_dirs(workspace: Path, config_dir: Path | None = None) -> list[Path]:
    """Project skills first (they win over a user skill of the same name)."""
    config = config_dir if config_dir is not None else default_config_dir()
    return [workspace.resolve() / ".gemma-agent" / "skills", config / "skills"]


def discover_skills(folders: Sequence[Path]) -> list[Skill]:
    """Each ``FOLDER/*/SKILL.md`` (or a skill folder or SKILL.md given directly), by name; a
    later folder's skill of a name already found is skipped. Malformed ones are kept, with
    their error."""
    out: dict[str, Skill] = {}
    broken: list[Skill] = []
    for folder in folders:
        folder = folder.expanduser()
        if folder.name == SKILL_FILE and folder.is_file():
            files = [folder]
        elif (folder / SKILL_FILE).is_file():
            files = [folder / SKILL_FILE]
        elif folder.is_dir():
            files = sorted(p / SKILL_FILE for p in folder.iterdir() if (p / SKILL_FILE).is_file())
        else:
            continue
        for path in files:
            skill = load_skill(path)
            if skill.error is not None:
                broken.append(skill)
            elif skill.name not in out:
                out[skill.name] = skill
    skills = sorted(out.values(), key=lambda s: s.name)
    if len(skills) > MAX_SKILLS:
        dropped = skills[MAX_SKILLS:]
        skills = skills[:MAX_SKILLS]
        broken += [
            Skill(s.name, s.description, s.path, error=f"more than {MAX_SKILLS} skills")
            for s in dropped
        ]
    return skills + broken


def project_context(
    workspace: Path,
    *,
    memory: bool | Sequence[str | Path] = True,
    skills: bool | Sequence[str | Path] = True,
    config_dir: Path | None = None,
    memory_cap: int = MEMORY_CAP_CHARS,
) -> ProjectContext:
    """Read the memory files and skills for a workspace (``True``: the usual places; a list:
    those files/folders only, relative to the workspace; ``False``: none)."""
    files: list[MemoryFile] = []
    notices: list[str] = []
    if memory is True:
        files, notices = load_memory(memory_paths(workspace, config_dir), memory_cap)
    elif memory:
        given = [_given(workspace, p) for p in _paths(memory, "memory")]
        missing = [str(p) for p in given if not p.is_file()]
        if missing:
            raise ConfigError(f"memory=: no such file: {', '.join(missing)}")
        files, notices = load_memory([(p, "given") for p in given], memory_cap)
    found: list[Skill] = []
    if skills is True:
        found = discover_skills(skill_dirs(workspace, config_dir))
    elif skills:
        given = [_given(workspace, p) for p in _paths(skills, "skills")]
        missing = [str(p) for p in given if not p.exists()]
        if missing:
            raise ConfigError(f"skills=: no such skill folder: {', '.join(missing)}")
        found = discover_skills(given)
    notices += [f"skill not loaded: {s.error}" for s in found if s.error is not None]
    return ProjectContext(tuple(files), tuple(found), tuple(notices))


NESTED_MEMORY_CAP_CHARS = 8_000  # all nested AGENTS.md files of one session together
_PATH_KEYS = ("path", "file_path", "directory", "folder", "cwd")
_CD = re.compile(r"^\s*cd\s+([^\s;&|]+)")


class NestedMemory:
    """The ``AGENTS.md`` files of folders below the workspace, each given to the model once per
    session, when a tool first works in its folder (a file tool's ``path``, a ``run_shell``
    command starting with ``cd DIR``). The text goes after that call's result, an exact append
    to the prompt: the system turn stays the same and the prefix cache hot. All of them share
    ``cap`` characters; past it a file is named, not loaded."""

    def __init__(self, workspace: Path, cap: int = NESTED_MEMORY_CAP_CHARS) -> None:
        self.workspace = workspace.resolve()
        self.room = cap
        self.cap = cap
        self.seen: set[Path] = set()  # folders already looked at
        self.loaded: list[Path] = []  # files given to the model (maybe cut)

    def folders(self, arguments: Mapping[str, Any]) -> list[Path]:
        """The folders below the workspace that a call's arguments name."""
        raw = [arguments.get(k) for k in _PATH_KEYS]
        command = arguments.get("command")
        if isinstance(command, str) and (m := _CD.match(command)):
            raw.append(m.group(1).strip("'\""))
        out = []
        for value in raw:
            if not isinstance(value, str) or not value.strip():
                continue
            path = Path(value).expanduser()
            path = (path if path.is_absolute() else self.workspace / path).resolve()
            folder = path if path.is_dir() else path.parent
            if folder != self.workspace and folder.is_relative_to(self.workspace):
                out.append(folder)
        return out

    def for_call(self, arguments: Mapping[str, Any]) -> tuple[str, list[str]] | None:
        """The memory text to add after the call's result, and notices; None when nothing new."""
        parts: list[str] = []
        notices: list[str] = []
        for target in self.folders(arguments):
            chain = [target, *target.parents]
            inside = [f for f in chain if f != self.workspace and f.is_relative_to(self.workspace)]
            for folder in reversed(inside):  # the outer folder's file first
                if folder in self.seen:
                    continue
                self.seen.add(folder)
                path = folder / MEMORY_FILE
                if not path.is_file():
                    continue
                try:
                    text = path.read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError) as e:
                    notices.append(f"memory file {path} cannot be read: {e}")
                    continue
                shown = path.relative_to(self.workspace)
                if self.room <= 0:
                    parts.append(
                        f"[agent] {shown} exists but was not loaded (the memory cap of {self.cap} "
                        "characters is used up); read it with read_file if it matters."
                    )
                    notices.append(f"memory file {shown} not loaded: the nested memory cap is used")
                    continue
                head = text[: self.room]
                self.room -= len(head)
                self.loaded.append(path)
                cut = len(head) < len(text)
                if cut:
                    head += f"\n[… cut: {len(text) - len(head)} more characters not loaded]"
                parts.append(
                    f"[agent] Project memory for {shown.parent}/ ({shown}), loaded because "
                    f"you are working there. Follow it in that folder:\n{head}"
                )
                notices.append(
                    f"loaded {shown} ({len(text)} characters{', cut to the memory cap' if cut else ''})"
                )
        return ("\n\n".join(parts), notices) if parts or notices else None


def _paths(value: Sequence[str | Path], what: str) -> list[str | Path]:
    if isinstance(value, str | Path):
        raise ConfigError(
            f"{what}= takes True, False or a list of paths, not one path: [{value!r}]"
        )
    return list(value)


def _given(workspace: Path, path: str | Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else workspace / p


__all__ = [
    "MEMORY_CAP_CHARS",
    "MEMORY_FILE",
    "NESTED_MEMORY_CAP_CHARS",
    "MemoryFile",
    "NestedMemory",
    "ProjectContext",
    "discover_skills",
    "load_memory",
    "memory_paths",
    "project_context",
    "repository_root",
    "skill_dirs",
]
