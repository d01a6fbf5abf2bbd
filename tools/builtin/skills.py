"""Skills: folders holding a ``SKILL.md`` (front matter ``name`` and ``description``, then the
instructions), the format Claude Code and Codex use. Only names and descriptions go into the
system turn; the ``skill`` tool loads a skill's body when the model asks for it (progressive
disclosure). Discovery lives in ``agent/context.py``; this module reads the format.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..base import Tool, ToolContext
from ..errors import ToolError

SKILL_FILE = "SKILL.md"
_MAX_LISTED_FILES = 40


def parse_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``---`` + ``key: value`` lines + ``---`` at the top of a Markdown file, and the body.

    A small YAML subset (what skill and command files use): ``key: value`` with plain, quoted
    or ``[a, b]`` values, ``key:`` followed by ``- item`` lines, ``key: >``/``|`` followed by
    indented lines, comments. ValueError (with the line) for anything else. A file without front
    matter gives ``({}, text)``.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ValueError("the front matter is not closed with a '---' line") from None
    meta: dict[str, Any] = {}
    key: str | None = None  # a key waiting for '- item' or indented lines
    block: list[str] = []
    for number, raw in enumerate(lines[1:end], start=2):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if key is not None and raw[:1] in (" ", "\t"):
            item = line.strip()
            if item.startswith("- ") and not block:
                meta.setdefault(key, [])
                if isinstance(meta[key], list):
                    meta[key].append(_scalar(item[2:].strip()))
                    continue
            if not isinstance(meta.get(key), list):
                block.append(item)
                meta[key] = " ".join(block)
                continue
        if raw[:1] in (" ", "\t") or ":" not in line:
            raise ValueError(f"line {number}: expected 'key: value', got {line.strip()!r}")
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        block = []
        if value in ("", ">", "|", ">-", "|-"):
            meta[key] = ""
            continue
        meta[key] = _scalar(value)
        key = None
    body = "\n".join(lines[end + 1 :])
    return meta, body


def _scalar(value: str) -> Any:
    if value[:1] in ("'", '"'):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"bad quoted value {value}") from None
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1].strip()
        return [_scalar(v.strip()) for v in inner.split(",")] if inner else []
    if value in ("true", "false"):
        return value == "true"
    return value


@dataclass(frozen=True, slots=True)
class Skill:
    """One skill folder. ``error`` says why it cannot be used (it is then listed, not offered)."""

    name: str
    description: str
    path: Path  # its SKILL.md
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def body(self) -> str:
        """The instructions (the file without its front matter), read now."""
        _, body = parse_front_matter(self.path.read_text(encoding="utf-8"))
        return body.strip()

    def files(self) -> list[str]:
        """The other files of the folder (scripts, references), relative, sorted, capped."""
        out: list[str] = []
        for root, dirs, names in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for n in sorted(names):
                rel = (Path(root) / n).relative_to(self.folder)
                if str(rel) != SKILL_FILE and not n.startswith("."):
                    out.append(str(rel))
        return out


def load_skill(path: Path) -> Skill:
    """Read a SKILL.md (never raises: a malformed skill comes back with its ``error``)."""
    fallback = path.parent.name
    try:
        meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return Skill(fallback, "", path, error=f"cannot read {path}: {e}")
    name, description = meta.get("name"), meta.get("description")
    problems = []
    if not isinstance(name, str) or not name.strip():
        problems.append("front matter without a 'name'")
    if not isinstance(description, str) or not description.strip():
        problems.append("front matter without a 'description'")
    if not body.strip():
        problems.append("no instructions after the front matter")
    label = name.strip() if isinstance(name, str) and name.strip() else fallback
    desc = " ".join(description.split()) if isinstance(description, str) else ""
    if problems:
        return Skill(label, desc, path, error=f"{path}: {'; '.join(problems)}", meta=meta)
    return Skill(label, desc, path, meta=meta)


class _SkillArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class SkillTool(Tool):
    """Loads a skill's instructions (and lists the files of its folder) when the model asks."""

    name = "skill"
    read_only = True
    sequential = False

    def __init__(self, skills: Iterable[Skill]) -> None:
        super().__init__(args_model=_SkillArgs)
        self.set_skills(skills)

    def set_skills(self, skills: Iterable[Skill]) -> None:
        self.skills = {s.name: s for s in skills if s.error is None}
        names = sorted(self.skills)
        self.description = (
            "Load a skill: its step-by-step instructions for a kind of task. Call it "
            "before starting a task that one of the listed skills covers."
        )
        self.parameters = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": names, "description": "The skill's name."}
            },
            "required": ["name"],
        }

    async def execute(self, args: Any, ctx: ToolContext[Any]) -> Any:
        skill = self.skills.get(args.name)
        if skill is None:
            raise ToolError(
                f"No skill named {args.name!r}; the skills are: {', '.join(sorted(self.skills))}"
            )
        try:
            body = skill.body()
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ToolError(f"skill {skill.name} cannot be read: {e}") from None
        files = skill.files()
        out = [f"Skill {skill.name} (folder {skill.folder})", "", body]
        if files:
            shown = files[:_MAX_LISTED_FILES]
            more = len(files) - len(shown)
            out += ["", "Files in the skill's folder (read or run them by this path):"]
            out += [f"- {skill.folder / f}" for f in shown]
            if more:
                out.append(f"- … and {more} more")
        return "\n".join(out)


__all__ = ["SKILL_FILE", "Skill", "SkillTool", "load_skill", "parse_front_matter"]
