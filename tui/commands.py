"""Slash commands: the table, parsing and completion. No textual import here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # without the slash
    usage: str  # arguments, e.g. "on|off|budget N"
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("help", "", "show the commands and keys"),
    Command("think", "on|off|budget N|full|collapsed|hidden", "thinking on/off, budget, display"),
    Command("compact", "[focus]", "compact the history now (optionally keep a focus)"),
    Command("undo-compact", "", "revert the last compaction"),
    Command("clear", "", "start a new session with an empty transcript"),
    Command("model", "", "show the model, variant and engine"),
    Command("tools", "", "list the tools the agent can call"),
    Command("approval", "read-only|ask|auto|yolo", "set the approval mode"),
    Command("plan", "", "show or hide the plan panel"),
    Command("sessions", "", "pick a saved session to resume"),
    Command("resume", "ID", "resume a saved session"),
    Command("save", "", "save the session now and show its id"),
    Command("export", "[PATH]", "write the transcript as Markdown"),
    Command("attach", "PATH", "attach an image or audio file to the next message"),
    Command("quit", "", "leave"),
)

BY_NAME = {c.name: c for c in COMMANDS}


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    name: str
    arg: str


def parse_command(text: str) -> ParsedCommand | None:
    """``/name rest`` -> ParsedCommand; None when the text is not a slash command."""
    text = text.strip()
    if not text.startswith("/") or text.startswith("//"):
        return None
    name, _, arg = text[1:].partition(" ")
    return ParsedCommand(name.lower(), arg.strip())


def complete(prefix: str) -> list[Command]:
    """Commands whose name starts with what was typed after the slash."""
    if not prefix.startswith("/") or " " in prefix or "\n" in prefix:
        return []
    typed = prefix[1:].lower()
    return [c for c in COMMANDS if c.name.startswith(typed)]


def help_text() -> str:
    lines = ["**Commands**", ""]
    for c in COMMANDS:
        usage = f" {c.usage}" if c.usage else ""
        lines.append(f"- `/{c.name}{usage}` — {c.help}")
    lines += [
        "",
        "**Keys**",
        "",
        "- `Enter` send · `Shift+Enter` / `Ctrl+J` new line · `↑`/`↓` input history",
        "- `Esc` interrupt the running step · `Ctrl+C` twice quit",
        "- `Shift+Tab` cycle the approval mode · `Ctrl+T` cycle the thinking display",
        "- `Tab` from the prompt selects the newest thinking block, tool card or compaction "
        "marker; `↑`/`↓` move, `Enter`/`Space` or a click opens it, `PgUp`/`PgDn` scroll",
    ]
    return "\n".join(lines)
