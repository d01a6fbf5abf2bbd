"""Custom slash commands in the TUI (``.gemma-agent/commands/*.md``): completion entries, the
``/commands`` listing and the notices about hidden or malformed files. No textual import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..agent import CustomCommand, discover_commands
from .commands import BY_NAME, Command


def load(workspace: Path | None) -> list[CustomCommand]:
    """The workspace's and the user's commands; a built-in name wins (the file is hidden)."""
    return discover_commands(workspace or Path.cwd(), reserved=BY_NAME)


def overrides(commands: Sequence[CustomCommand]) -> set[str]:
    """Names of the project commands that hide a user command of the same name."""
    return {c.name for c in commands if c.hidden_by and c.hidden_by.startswith("the project")}


def menu_entries(commands: Sequence[CustomCommand]) -> list[Command]:
    """The usable commands as completion entries: the hint, the description and the scope."""
    hidden = overrides(commands)
    out = []
    for c in commands:
        if not c.usable:
            continue
        usage = c.argument_hint or ("[arguments]" if c.takes_arguments else "")
        scope = f"{c.scope}, overrides the user's /{c.name}" if c.name in hidden else c.scope
        about = f"{c.description} ({scope})" if c.description else f"({scope})"
        out.append(Command(c.name, usage, about))
    return out


def startup_notices(commands: Sequence[CustomCommand]) -> list[str]:
    """What must not pass silently: files a built-in hides, files that cannot be used."""
    out = [
        f"The command file {c.path} is not used: /{c.name} is {c.hidden_by}."
        for c in commands
        if c.hidden_by and c.hidden_by.startswith("the built-in")
    ]
    out += [f"A command file cannot be used: {c.error}" for c in commands if c.error]
    return out


def listing(commands: Sequence[CustomCommand]) -> str:
    """``/commands``: each command, where it comes from, and why one is not used."""
    if not commands:
        return (
            "No custom commands. Put Markdown files in `.gemma-agent/commands/` (this project) "
            "or `~/.config/gemma-agent/commands/` (yours): `review.md` is `/review`."
        )
    hidden = overrides(commands)
    lines = ["**Custom commands**", ""]
    for c in commands:
        hint = f" {c.argument_hint}" if c.argument_hint else ""
        if c.error:
            lines.append(f"- ⚠ `/{c.name}` — {c.error}")
        elif c.hidden_by:
            lines.append(f"- `/{c.name}` ({c.scope}, `{c.path}`) — hidden by {c.hidden_by}")
        else:
            extra = f", overrides the user's /{c.name}" if c.name in hidden else ""
            flags = []
            if c.thinking is not None:
                flags.append(f"thinking {'on' if c.thinking else 'off'}")
            if c.allowed_tools is not None:
                flags.append(f"tools: {', '.join(c.allowed_tools) or 'none'}")
            more = f" [{'; '.join(flags)}]" if flags else ""
            lines.append(
                f"- `/{c.name}{hint}` — {c.description} ({c.scope}{extra}, `{c.path}`){more}"
            )
    return "\n".join(lines)
