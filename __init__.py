"""gemma-agent: a Gemma-4-native agent framework.

    from gemma_agent import Agent, tool

Names are imported lazily so that ``import gemma_agent`` stays fast and never imports torch,
vllm or textual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Agent": ".agent.agent",
    "RunResult": ".agent.agent",
    "tool": ".tools.base",
    "Tool": ".tools.base",
    "ToolContext": ".tools.base",
    "ToolError": ".tools.base",
    "ScriptedEngine": ".agent.engines.scripted",
    "VLLMEngine": ".agent.engines.vllm",
    "OpenAIHTTPEngine": ".agent.engines.openai_http",
    "Image": ".agent.media",
    "Audio": ".agent.media",
    "AgentError": ".errors",
    "ConfigError": ".errors",
    "EngineError": ".errors",
}

__all__ = [
    "Agent",
    "AgentError",
    "Audio",
    "ConfigError",
    "EngineError",
    "Image",
    "OpenAIHTTPEngine",
    "RunResult",
    "ScriptedEngine",
    "Tool",
    "ToolContext",
    "ToolError",
    "VLLMEngine",
    "__version__",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gemma_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .agent.agent import Agent, RunResult
    from .agent.engines.openai_http import OpenAIHTTPEngine
    from .agent.engines.scripted import ScriptedEngine
    from .agent.engines.vllm import VLLMEngine
    from .agent.media import Audio, Image
    from .errors import AgentError, ConfigError, EngineError
    from .tools.base import Tool, ToolContext, ToolError, tool
