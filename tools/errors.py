"""The errors a tool raises for the model to read; a module of its own so that every part of
``tools`` (base, workspace, spill, the built-ins) can import it without importing the others."""

from __future__ import annotations


class ToolError(Exception):
    """Raised by a tool to report a problem the model should read and act on."""


class InvalidArguments(ToolError):
    """The arguments did not match the tool's schema; the call was not made."""


__all__ = ["InvalidArguments", "ToolError"]
