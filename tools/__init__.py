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
from .builtin import PlanChanged, ProcessInfo, coding_tools, web_tools
from .mcp import MCPServer, MCPServers, MCPStatus, MCPTool
from .mcp_config import MCPConfig, MCPServerConfig, load_mcp_config, start_mcp_servers
from .recall import recall_output
from .registry import ToolOutcome, ToolRegistry
from .spill import SpillStore
from .workspace import PathOutsideWorkspace, Workspace

__all__ = [
    "ApprovalPolicy",
    "Decision",
    "FunctionTool",
    "InvalidArguments",
    "MCPConfig",
    "MCPServer",
    "MCPServerConfig",
    "MCPServers",
    "MCPStatus",
    "MCPTool",
    "PathOutsideWorkspace",
    "PlanChanged",
    "ProcessInfo",
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
    "load_mcp_config",
    "recall_output",
    "start_mcp_servers",
    "tool",
    "web_tools",
]
