"""Slash commands: the table, parsing and completion. No textual import here."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ..errors import ConfigError

# Adds the engine flags (those of `gemma-agent --help`) to the parser of /model's arguments.
EngineFlags = Callable[[argparse.ArgumentParser], None]


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
    Command("rewind", "[undo]", "go back to an earlier message: code, conversation or both"),
    Command("clear", "", "start a new session with an empty transcript"),
    Command("model", "[NAME|PATH] [--variant V]", "show or switch the model (keeps the chat)"),
    Command("tools", "", "list the tools the agent can call"),
    Command("mcp", "[trust]", "MCP servers: state and tools; trust the project's servers"),
    Command("processes", "", "run_shell's background processes: status, runtime, last lines"),
    Command("approval", "read-only|ask|auto|yolo", "set the approval mode"),
    Command("plan", "", "show or hide the plan panel"),
    Command("accept", "[note]", "accept the plan (plan mode) and carry it out"),
    Command("memory", "[edit]", "show the AGENTS.md memory loaded (edit: open it in $EDITOR)"),
    Command("init", "", "have the agent study the repository and write AGENTS.md"),
    Command("skills", "", "list the skills (and the malformed ones, with why)"),
    Command("agents", "", "list the sub-agent types the task tool can start"),
    Command("commands", "", "list the custom commands (.gemma-agent/commands/*.md)"),
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


def complete(prefix: str, custom: Sequence[Command] = ()) -> list[Command]:
    """Commands whose name starts with what was typed after the slash: the built-ins, then
    the custom commands (``custom``, from the command files)."""
    if not prefix.startswith("/") or " " in prefix or "\n" in prefix:
        return []
    typed = prefix[1:].lower()
    return [c for c in (*COMMANDS, *custom) if c.name.lower().startswith(typed)]


@dataclass(frozen=True, slots=True)
class Choice:
    """A completion of a command's argument: ``text`` replaces the whole prompt."""

    text: str
    label: str
    help: str


def model_choices() -> list[tuple[str, str]]:
    """The models ``/model`` offers by name: the presets, then the tiny models."""
    from ..agent import PRESETS

    out = [(p.name, f"{p.hf_id} · {p.size} · {p.max_model_len // 1024}K") for p in PRESETS.values()]
    out.append(("tiny", "random weights, output is noise (wiring checks)"))
    out.append(("tiny-mm", "tiny with random image/audio towers (media path checks)"))
    return out


def complete_argument(text: str) -> list[Choice]:
    """Argument completions: ``/model `` + the start of a preset name."""
    if "\n" in text or not text.lower().startswith("/model "):
        return []
    typed = text[len("/model ") :]
    if " " in typed.strip() or typed.startswith(("-", ".", "/", "~")):
        return []  # flags or a path: nothing to offer
    key = typed.strip().lower()
    return [
        Choice(f"/model {name}", name, about)
        for name, about in model_choices()
        if name.lower().startswith(key)
    ]


class _ModelArgs(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"/model: {message}. {MODEL_USAGE}")


MODEL_USAGE = (
    "Usage: /model NAME|PATH [--variant V] [--replace] (and the engine flags of "
    "`gemma-agent --help`: --engine, --base-url, --max-model-len, ...)"
)


def parse_model_args(arg: str, engine_flags: EngineFlags | None = None) -> dict[str, Any]:
    """``/model`` arguments as engine settings: ``model``, the engine flags that were given
    (``engine_flags`` adds them to the parser: those of `gemma-agent --help`), and ``replace``
    (stop the current engine before starting the new one: one GPU may not hold both).
    ConfigError on bad flags."""
    try:
        words = shlex.split(arg)
    except ValueError as e:
        raise ConfigError(f"/model: {e} (quote a path with spaces). {MODEL_USAGE}") from e
    parser = _ModelArgs(prog="/model", add_help=False)
    parser.add_argument("name", nargs="?")
    parser.add_argument("--replace", action="store_true", default=None)
    if engine_flags is not None:
        engine_flags(parser)
    ns = parser.parse_args(words)
    name = ns.name or ns.model
    if not name:
        raise ConfigError(f"/model: which model? {MODEL_USAGE}")
    settings = {k: v for k, v in vars(ns).items() if v is not None and k != "name"}
    settings["model"] = name
    return settings


def help_text(custom: Sequence[Command] = ()) -> str:
    """The built-in commands, the project's and user's own (``custom``: their menu entries),
    and the keys."""
    lines = ["**Commands**", ""]
    for c in COMMANDS:
        usage = f" {c.usage}" if c.usage else ""
        lines.append(f"- `/{c.name}{usage}` — {c.help}")
    if custom:
        lines += ["", "**Custom commands** (`.gemma-agent/commands/`, `/commands` lists them)", ""]
        for c in custom:
            usage = f" {c.usage}" if c.usage else ""
            lines.append(f"- `/{c.name}{usage}` — {c.help}")
    lines += [
        "",
        "**Keys**",
        "",
        "- `Enter` send · `Shift+Enter` / `Ctrl+J` new line · `↑`/`↓` input history",
        "- `Esc` interrupt the running step · `Ctrl+C` twice quit",
        "- `Shift+Tab` cycle the approval mode, then plan mode · `Ctrl+T` cycle the thinking "
        "display",
        "- `Tab` from the prompt selects the newest thinking block, tool card or compaction "
        "marker; `↑`/`↓` move, `Enter`/`Space` or a click opens it, `PgUp`/`PgDn` scroll",
    ]
    return "\n".join(lines)
