"""TUI settings: TOML config files merged with command-line flags.

Precedence (last wins): built-in defaults, ``~/.config/gemma-agent/config.toml``,
``<workspace>/.gemma-agent/config.toml``, command-line flags. No textual import here.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from ..errors import ConfigError

ThinkingDisplay = Literal["full", "collapsed", "hidden"]
ApprovalMode = Literal["read-only", "ask", "auto", "yolo"]

THINKING_DISPLAYS: tuple[ThinkingDisplay, ...] = ("full", "collapsed", "hidden")
APPROVAL_MODES: tuple[ApprovalMode, ...] = ("read-only", "ask", "auto", "yolo")


@dataclass(frozen=True, slots=True)
class TuiSettings:
    model: str | None = None
    variant: str | None = None
    thinking: bool = False
    thinking_budget: int | None = None
    thinking_display: ThinkingDisplay = "collapsed"
    approval: ApprovalMode = "ask"
    theme: str = "textual-dark"
    tool_choice: str = "auto"
    max_steps: int = 50
    subagents: bool = True  # the task tool (sub-agents)
    max_subagents: int = 4  # sub-agents running at once


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent" / "config.toml"


def project_config_path(workspace: Path) -> Path:
    return workspace / ".gemma-agent" / "config.toml"


def _check(path: Path, key: str, value: Any) -> Any:
    """Validate one config value; the error says which file and key to fix."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{path}: `{key}` must be {expected}, got {value!r}")

    match key:
        case "model" | "variant" | "theme" | "tool_choice":
            if not isinstance(value, str) or not value:
                raise bad("a non-empty string")
        case "thinking" | "subagents":
            if not isinstance(value, bool):
                raise bad("true or false")
        case "thinking_budget":
            if value is not None and (not isinstance(value, int) or value < 0):
                raise bad("a whole number >= 0")
        case "max_steps" | "max_subagents":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad("a whole number >= 1")
        case "thinking_display":
            if value not in THINKING_DISPLAYS:
                raise bad(" | ".join(THINKING_DISPLAYS))
        case "approval":
            if value not in APPROVAL_MODES:
                raise bad(" | ".join(APPROVAL_MODES))
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """Read one TOML file; a missing file is empty. Accepts a ``[thinking]`` table too."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix or delete the file") from e
    data.pop("mcp_servers", None)  # read by gemma_agent.tools.load_mcp_config
    data.pop("web_fetch", None)  # read by gemma_agent.tools.web_tools (the user's file only)
    thinking = data.pop("thinking", None)
    if isinstance(thinking, dict):
        for sub, value in thinking.items():
            name = {
                "enabled": "thinking",
                "budget": "thinking_budget",
                "display": "thinking_display",
            }.get(sub)
            if name is None:
                raise ConfigError(
                    f"{path}: unknown key `thinking.{sub}` (enabled, budget, display)"
                )
            data[name] = value
    elif thinking is not None:
        data["thinking"] = thinking
    known = {f.name for f in fields(TuiSettings)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown key `{key}` (known: {', '.join(sorted(known))})")
        out[key] = _check(path, key, value)
    return out


def load_settings(
    workspace: Path, *, user_path: Path | None = None, overrides: dict[str, Any] | None = None
) -> TuiSettings:
    """Merge defaults, the user file, the project file and non-None ``overrides`` (the flags)."""
    settings = TuiSettings()
    for path in (user_path or user_config_path(), project_config_path(workspace)):
        settings = replace(settings, **read_config_file(path))
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key, value in flags.items():
        _check(Path("<command line>"), key, value)
    return replace(settings, **cast(dict[str, Any], flags))
