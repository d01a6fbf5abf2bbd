"""The editor faces: `gemma-agent acp` (Agent Client Protocol: Zed, JetBrains, Neovim, Toad)
and `gemma-agent mcp-serve` (the agent as an MCP server other agents call).

    from gemma_agent.editors import serve_acp

    await serve_acp(lambda folder, wrap_tools: Agent(engine=engine, workspace=folder), reader, writer)

Both sit on the SDK's public surface; the protocol packages are imported only here.
"""

from __future__ import annotations

from .acp_agent import AgentFactory, GemmaACPAgent, ToolsHook, serve_acp
from .app import build_agent, run_acp

__all__ = ["AgentFactory", "GemmaACPAgent", "ToolsHook", "build_agent", "run_acp", "serve_acp"]
