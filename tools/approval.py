"""Approval policy: allow, ask or deny each tool call before it runs.

Modes:

- ``read-only``: read-only tools run; everything else is denied.
- ``ask``: read-only tools run; writes and shell commands ask (unless a rule allows them).
- ``auto``: everything runs, except dangerous shell commands, which ask.
- ``yolo``: everything runs (explicit deny rules still deny).

Rules match a tool by name and, for shell tools, a command prefix by words
(``Rule.parse("run_shell(git diff)")`` allows ``git diff --stat`` but not ``git reset``). A compound
command (``a && b | c``) is allowed by rules only when every part is. "Always allow" answers are
remembered as rules in a JSON file kept outside the workspace (so the agent cannot grant itself
permissions by writing a file), one per project.

Dangerous shell commands (``tools/commands.py``: a recursive rm outside the workspace, ``git reset
--hard``, ``curl ... | sh``, uploads, ...) force ``ask`` even in ``auto`` mode and over allow
rules. A list can never be complete: the sandbox (``tools/builtin/sandbox.py``) is the real wall,
and where it cannot run, auto mode asks before every shell command.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from .base import Tool
from .commands import SimpleCommand, dangerous_reason, parse_commands

Action = Literal["allow", "ask", "deny"]
Mode = Literal["read-only", "ask", "auto", "yolo"]
MODES: tuple[Mode, ...] = ("read-only", "ask", "auto", "yolo")
# Commands whose second word is the subcommand: "always allow" remembers both (``git diff``).
_TWO_WORD = {"git", "npm", "pnpm", "yarn", "cargo", "go", "pip", "pip3", "uv", "docker",
             "kubectl", "poetry", "conda", "apt", "apt-get", "brew", "dotnet", "gh", "make"}  # fmt: skip


def _split_words(text: str) -> list[str] | None:
    try:
        return shlex.split(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class Rule:
    """``tool`` is a tool name or "*"; ``prefix`` (shell tools only) is matched word by word."""

    tool: str
    action: Action = "allow"
    prefix: str | None = None

    @classmethod
    def parse(cls, text: str, action: Action = "allow") -> Rule:
        """``"read_file"``, ``"*"``, or ``"run_shell(git diff)"``."""
        text = text.strip()
        match = re.fullmatch(r"([\w.*\-]+)\s*(?:\((.*)\))?", text, re.DOTALL)
        if not match:
            raise ConfigError(f"bad approval rule {text!r}: write 'tool' or 'tool(command prefix)'")
        prefix = match.group(2)
        return cls(match.group(1), action, prefix.strip() if prefix and prefix.strip() else None)

    def matches(self, tool: Tool, words: list[str] | None) -> bool:
        if self.tool not in ("*", tool.name):
            return False
        if self.prefix is None:
            return True
        if words is None:
            return False
        want = _split_words(self.prefix)
        return want is not None and words[: len(want)] == want

    def __str__(self) -> str:
        return self.tool + (f"({self.prefix})" if self.prefix else "")


def _unsandboxed_reason(tool: Tool) -> str | None:
    """Why a shell tool runs its commands outside the sandbox it wanted (``RunShell`` where
    bubblewrap cannot run), else None; other tools say nothing and count as sandboxed."""
    reason = getattr(tool, "unsandboxed_reason", None)
    return reason if isinstance(reason, str) and reason else None


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gemma-agent"


def project_store(workspace: str | Path, config_dir: str | Path | None = None) -> Path:
    """Where "always allow" answers of a project live: outside the project, keyed by its path."""
    root = Path(workspace).resolve()
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", root.name) or "root"
    base = Path(config_dir) if config_dir is not None else default_config_dir()
    return base / "projects" / f"{safe}-{digest}" / "approvals.json"


class ApprovalPolicy:
    def __init__(
        self,
        mode: Mode = "ask",
        rules: Iterable[Rule | str] = (),
        *,
        store: str | Path | None = None,
        workspace: str | Path | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"approval mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.mode: Mode = mode
        self.rules: list[Rule] = [r if isinstance(r, Rule) else Rule.parse(r) for r in rules]
        self.store = Path(store) if store is not None else None
        self.workspace = Path(workspace) if workspace is not None else None
        self._lock = threading.Lock()
        self.remembered: list[Rule] = self._load()

    @classmethod
    def for_project(
        cls,
        workspace: str | Path,
        mode: Mode = "ask",
        rules: Iterable[Rule | str] = (),
        *,
        config_dir: str | Path | None = None,
    ) -> ApprovalPolicy:
        return cls(mode, rules, store=project_store(workspace, config_dir), workspace=workspace)

    def decide(self, tool: Tool, arguments: Mapping[str, Any]) -> Decision:
        command = self._command(tool, arguments)
        commands = parse_commands(command) if command is not None else None
        rules = [*self.rules, *self.remembered]
        for rule in rules:
            if rule.action == "deny" and self._rule_hits(
                rule, tool, command, commands, any_part=True
            ):
                return Decision("deny", f"denied by rule {rule}")
        if self.mode == "yolo":
            return Decision("allow", "yolo mode")
        if tool.delegates:
            return Decision("allow", "the calls it makes are approved one by one")
        if self.mode == "read-only":
            if tool.read_only:
                return Decision("allow", "read-only tool")
            return Decision("deny", f"read-only mode: {tool.name} may change files or run commands")
        if command is not None:
            reason = dangerous_reason(command, self.workspace)
            if reason:
                return Decision("ask", f"dangerous command: {reason}")
        for rule in rules:
            if rule.action == "ask" and self._rule_hits(
                rule, tool, command, commands, any_part=True
            ):
                return Decision("ask", f"rule {rule} asks")
        for rule in rules:
            if rule.action == "allow" and self._rule_hits(
                rule, tool, command, commands, any_part=False
            ):
                return Decision("allow", f"allowed by rule {rule}")
        if tool.read_only:
            return Decision("allow", "read-only tool")
        if self.mode == "auto":
            unsandboxed = _unsandboxed_reason(tool) if command is not None else None
            if unsandboxed:
                return Decision(
                    "ask", f"not sandboxed ({unsandboxed}): shell commands need approval"
                )
            return Decision("allow", "auto mode")
        what = "run a shell command" if command is not None else f"use {tool.name}"
        return Decision("ask", f"ask mode: approve to {what}")

    def remember(self, tool: Tool, arguments: Mapping[str, Any]) -> list[Rule]:
        """Always allow calls like this one from now on (saved to the project's store)."""
        command = self._command(tool, arguments)
        new: list[Rule] = []
        if command is None:
            new.append(Rule(tool.name))
        else:
            for cmd in parse_commands(command) or []:
                if cmd.words:
                    size = (
                        2
                        if cmd.words[0] in _TWO_WORD
                        and len(cmd.words) > 1
                        and not cmd.words[1].startswith("-")
                        else 1
                    )
                    new.append(Rule(tool.name, "allow", shlex.join(cmd.words[:size])))
        with self._lock:
            for rule in new:
                if rule not in self.remembered:
                    self.remembered.append(rule)
            self._save()
        return new

    def forget(self) -> None:
        with self._lock:
            self.remembered = []
            self._save()

    # internals

    def _command(self, tool: Tool, arguments: Mapping[str, Any]) -> str | None:
        if tool.shell_argument is None:
            return None
        value = arguments.get(tool.shell_argument) if isinstance(arguments, Mapping) else None
        return value if isinstance(value, str) else ""

    def _rule_hits(
        self,
        rule: Rule,
        tool: Tool,
        command: str | None,
        commands: list[SimpleCommand] | None,
        *,
        any_part: bool,
    ) -> bool:
        if rule.prefix is None or command is None:
            return rule.prefix is None and rule.tool in ("*", tool.name)
        if not commands:
            return False
        hits = [rule.matches(tool, c.words) for c in commands]
        return any(hits) if any_part else all(hits)

    def _load(self) -> list[Rule]:
        if self.store is None or not self.store.exists():
            return []
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
            return [Rule(r["tool"], "allow", r.get("prefix")) for r in data.get("allow", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"cannot read approvals from {self.store}: {exc}; fix or delete the file"
            ) from exc

    def _save(self) -> None:
        if self.store is None:
            return
        self.store.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": 1,
            "workspace": str(self.workspace.resolve()) if self.workspace else None,
            "allow": [{"tool": r.tool, "prefix": r.prefix} for r in self.remembered],
        }
        tmp = self.store.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.store)


__all__ = [
    "MODES",
    "ApprovalPolicy",
    "Decision",
    "Rule",
    "project_store",
]
