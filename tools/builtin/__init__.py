"""The built-in tools: files, search, shell, plan (``coding_tools``) and view_image; and what the
shell's sandbox mounts (``sandbox_mounts``, ``interpreter_binds``: the eval sandbox uses them)."""

from __future__ import annotations

from typing import Any

from ..base import Tool
from .background import ProcessInfo
from .files import edit_file, list_dir, read_file, write_file
from .media import media_tools, view_image
from .plan import PlanChanged, PlanItem, update_plan
from .sandbox import interpreter_binds, sandbox_mounts
from .search import glob, grep
from .shell import RunShell, SandboxMode, sandbox_status
from .web import WebFetch, web_tools


def coding_tools(
    *,
    sandbox: SandboxMode = "auto",
    network: bool = False,
    background: bool = False,
    **shell_options: Any,
) -> list[Tool]:
    """read_file, write_file, edit_file, list_dir, glob, grep, run_shell and update_plan.

    ``sandbox``: "auto" (bubblewrap when it can run, else a plain subprocess with limits),
    "bwrap" (required) or "none". ``network``: allow network access inside the sandbox.
    ``background``: run_shell may start background commands, and shell_output and shell_kill
    come too (the agent's ``aclose`` kills what is left).
    """
    shell = RunShell(sandbox=sandbox, network=network, background=background, **shell_options)
    extra = shell.background_tools() if background else []
    return [read_file, write_file, edit_file, list_dir, glob, grep, shell, *extra, update_plan]


__all__ = [
    "PlanChanged",
    "PlanItem",
    "ProcessInfo",
    "RunShell",
    "WebFetch",
    "coding_tools",
    "edit_file",
    "glob",
    "grep",
    "interpreter_binds",
    "list_dir",
    "media_tools",
    "read_file",
    "sandbox_mounts",
    "sandbox_status",
    "update_plan",
    "view_image",
    "web_tools",
    "write_file",
]
