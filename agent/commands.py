"""Custom slash commands: Markdown files whose text is sent as the task (Claude Code's format).

``<workspace>/.gemma-agent/commands/NAME.md`` (project) and ``~/.config/gemma-agent/commands/``
(user; ``$XDG_CONFIG_HOME`` is honoured). ``/NAME args`` sends the file's body with
``$ARGUMENTS`` (all the arguments), ``$1``, ``$2``… (the words, quotes respected) filled in. A
subfolder gives a namespaced name: ``frontend/build.md`` is ``/frontend:build``. Optional front
matter (the YAML subset of skills):

* ``description``: shown in the completion and in ``/commands``;
* ``argument-hint``: what the arguments are, e.g. ``[file] [focus]``;
* ``thinking``: ``on``/``off`` for that message only;
* ``allowed-tools``: the only tools the model may call while answering that message (enforced by
  the tool-call grammar, as plan mode is; Claude Code's names such as ``Read`` or
  ``Bash(git status:*)`` map to ours, an argument pattern is not enforced). Unlike Claude Code,
  it restricts; it approves nothing.

A project command wins over a user command of the same name; a name the face reserves (its
built-in commands) wins over both. Neither is silent: the losing command is kept with
``hidden_by`` set. A malformed file is kept with its ``error`` and never stops anything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..tools.approval import default_config_dir
from ..tools.builtin.skills import parse_front_matter

COMMANDS_DIR = "commands"
MAX_COMMANDS = 200
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ARG = re.compile(r"\$(ARGUMENTS|\d+)")

# Claude Code's tool names, as ours (a command written for it keeps working).
CLAUDE_TOOL_NAMES = {
    "Bash": "run_shell",
    "Read": "read_file",
    "Write": "write_file",
    "Edit": "edit_file",
    "MultiEdit": "edit_file",
    "Grep": "grep",
    "Glob": "glob",
    "LS": "list_dir",
    "WebFetch": "web_fetch",
    "TodoWrite": "update_plan",
    "Skill": "skill",
}

CommandScope = Literal["project", "user"]


@dataclass(frozen=True, slots=True)
class CommandPrompt:
    """A custom command made ready to send: the task text and how its run differs."""

    command: str  # the name, without the slash
    text: str
    thinking: bool | None = None  # None: the agent's setting
    allowed_tools: tuple[str, ...] | None = None  # None: every tool
    arguments: str = ""  # as typed after the name

    @property
    def typed(self) -> str:
        """The command as the user typed it (``/name args``)."""
        return f"/{self.command} {self.arguments}".rstrip()


@dataclass(frozen=True, slots=True)
class CustomCommand:
    """One command file. Usable when ``error`` and ``hidden_by`` are both None."""

    name: str  # without the slash; "frontend:build" for frontend/build.md
    path: Path
    scope: CommandScope
    description: str = ""
    argument_hint: str = ""
    thinking: bool | None = None
    allowed_tools: tuple[str, ...] | None = None
    body: str = ""
    error: str | None = None
    hidden_by: str | None = None  # e.g. "the built-in /help", "the project command /x"

    @property
    def usable(self) -> bool:
        return self.error is None and self.hidden_by is None

    @property
    def takes_arguments(self) -> bool:
        return bool(self.argument_hint) or _ARG.search(self.body) is not None

    def expand(self, arguments: str = "") -> CommandPrompt:
        """The body with the arguments filled in (see `expand_arguments`)."""
        text = expand_arguments(self.body, arguments)
        return CommandPrompt(self.name, text, self.thinking, self.allowed_tools, arguments.strip())


def expand_arguments(body: str, arguments: str) -> str:
    """``$ARGUMENTS`` → all the arguments as typed; ``$1``, ``$2``… → the words (shell-like
    quoting; a missing one is empty). A body without any placeholder gets the arguments
    appended on a line of their own (as Claude Code does), so they are never lost."""
    arguments = arguments.strip()
    try:
        words = shlex.split(arguments)
    except ValueError:  # an unclosed quote: plain words
        words = arguments.split()

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "ARGUMENTS":
            return arguments
        index = int(key)
        return words[index - 1] if 0 < index <= len(words) else ""

    if _ARG.search(body) is None:
        return f"{body.rstrip()}\n\n{arguments}" if arguments else body.strip()
    return _ARG.sub(fill, body).strip()


def command_dirs(
    workspace: Path, config_dir: Path | None = None
) -> list[tuple[Path, CommandScope]]:
    """Where command files are looked for: the project's first (they win), then the user's."""
    config = config_dir if config_dir is not None else default_config_dir()
    return [
        (workspace.resolve() / ".gemma-agent" / COMMANDS_DIR, "project"),
        (config / COMMANDS_DIR, "user"),
    ]


def load_command(path: Path, name: str, scope: CommandScope) -> CustomCommand:
    """Read one command file (never raises: a malformed one comes back with its ``error``)."""
    try:
        meta, body = parse_front_matter(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return CustomCommand(name, path, scope, error=f"{path}: {e}")
    problems: list[str] = []
    if not _NAME.match(name.replace(":", "")) or name.startswith(":") or "::" in name:
        problems.append(f"{name!r} is not a command name (letters, digits, '-', '_', '.')")
    description = _text(meta.get("description"))
    if not description:  # Claude Code's fallback: the first line of the body
        first = next((line.strip() for line in body.splitlines() if line.strip()), "")
        description = first.lstrip("# ").strip()[:100]
    thinking = meta.get("thinking")
    if isinstance(thinking, str):
        thinking = {"on": True, "off": False, "yes": True, "no": False}.get(
            thinking.lower(), thinking
        )
    if thinking is not None and not isinstance(thinking, bool):
        problems.append(f"thinking: {thinking!r} (use on or off)")
        thinking = None
    tools = meta.get("allowed-tools", meta.get("allowed_tools"))
    allowed = None if tools is None else tuple(_tool_names(tools))
    if not body.strip():
        problems.append("no text after the front matter")
    return CustomCommand(
        name,
        path,
        scope,
        description=" ".join(description.split()),
        argument_hint=_text(meta.get("argument-hint", meta.get("argument_hint"))),
        thinking=thinking,
        allowed_tools=allowed,
        body=body.strip(),
        error=f"{path}: {'; '.join(problems)}" if problems else None,
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value).strip()


def _tool_names(value: Any) -> list[str]:
    """``Read, Grep`` / ``[Read, Grep]`` / ``Bash(git add:*) Read`` → our tool names."""
    items = value if isinstance(value, list) else re.findall(r"[^\s,()]+(?:\([^)]*\))?", str(value))
    out: list[str] = []
    for item in items:
        name = str(item).strip().split("(", 1)[0].strip()
        name = CLAUDE_TOOL_NAMES.get(name, name)
        if name and name not in out:
            out.append(name)
    return out


def _files(folder: Path) -> list[tuple[Path, str]]:
    """``(path, name)`` of every ``*.md`` below a commands folder, sorted."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*.md")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        out.append((path, ":".join([*rel.parent.parts, rel.stem])))
    return out


def discover_commands(
    workspace: Path | str,
    *,
    reserved: Iterable[str] = (),
    config_dir: Path | None = None,
    folders: Sequence[tuple[Path, CommandScope]] | None = None,
) -> list[CustomCommand]:
    """The custom commands of a workspace, sorted by name: the usable ones, then those hidden
    (by a ``reserved`` name, e.g. the face's built-ins, or by a project command of the same
    name) and the malformed ones, each saying why."""
    found: dict[str, CustomCommand] = {}
    others: list[CustomCommand] = []
    reserved = {r.lower() for r in reserved}  # a face matches its built-ins in any case
    places = folders if folders is not None else command_dirs(Path(workspace), config_dir)
    for folder, scope in places:
        for path, name in _files(folder.expanduser()):
            command = load_command(path, name, scope)
            if command.error is not None:
                others.append(command)
            elif name.lower() in reserved:
                others.append(replace(command, hidden_by=f"the built-in /{name.lower()}"))
            elif name in found:
                winner = found[name]
                others.append(replace(command, hidden_by=f"the {winner.scope} command /{name}"))
            else:
                found[name] = command
    usable = sorted(found.values(), key=lambda c: c.name)
    if len(usable) > MAX_COMMANDS:
        others += [
            replace(c, error=f"more than {MAX_COMMANDS} commands") for c in usable[MAX_COMMANDS:]
        ]
        usable = usable[:MAX_COMMANDS]
    return usable + sorted(others, key=lambda c: c.name)


def find_command(commands: Iterable[CustomCommand], text: str) -> tuple[CustomCommand, str] | None:
    """``/name args`` → (the usable command, the arguments); None when it names none."""
    text = text.strip()
    if not text.startswith("/") or text.startswith("//"):
        return None
    name, _, arguments = text[1:].partition(" ")
    for command in commands:
        if command.usable and command.name == name:
            return command, arguments.strip()
    return None


def expand_command(
    text: str, workspace: Path | str, *, config_dir: Path | None = None
) -> CommandPrompt | None:
    """``/name args`` read from the workspace's (and the user's) command files, expanded; None
    when the text is not a custom command (it is then sent as it is)."""
    if not text.strip().startswith("/"):
        return None
    hit = find_command(discover_commands(workspace, config_dir=config_dir), text)
    return hit[0].expand(hit[1]) if hit is not None else None


__all__ = [
    "CLAUDE_TOOL_NAMES",
    "COMMANDS_DIR",
    "CommandPrompt",
    "CustomCommand",
    "command_dirs",
    "discover_commands",
    "expand_arguments",
    "expand_command",
    "find_command",
    "load_command",
]
