"""Typed tools: declaration, validation and calls, confinement, approvals, built-ins, MCP.

Knows nothing of models: the agent hands a name and arguments to ``ToolRegistry.call``.
"""

from __future__ import annotations

from .approval import ApprovalPolicy, Decision
from .base import (
    FunctionTool,
    InvalidArguments,
    Tool,
    ToolContext,
    ToolError,
    ToolMedia,
    ToolNotice,
    ToolOutput,
    tool,
)
from .builtin import PlanChanged, coding_tools
from .mcp import MCPServer, MCPTool
from .recall import recall_output
from .registry import ToolOutcome, ToolRegistry
from .spill import SpillStore
from .workspace import PathOutsideWorkspace, Workspace

__all__ = [
    "ApprovalPolicy",
    "Decision",
    "FunctionTool",
    "InvalidArguments",
    "MCPServer",
    "MCPTool",
    "PathOutsideWorkspace",
    "PlanChanged",
    "SpillStore",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolMedia",
    "ToolNotice",
    "ToolOutcome",
    "ToolOutput",
    "ToolRegistry",
    "Workspace",
    "coding_tools",
    "recall_output",
    "tool",
]
