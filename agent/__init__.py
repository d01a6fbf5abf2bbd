"""The agent's public surface: what the faces (TUI, headless, evals) and SDK users may import.

    from gemma_agent.agent import Agent, ModelTurn, create_engine, load_media

Everything else under ``gemma_agent.agent`` (the loop, the model layer, the session log format,
the engines' internals) may change without notice. Names are imported lazily, as in
``gemma_agent``: importing this package builds nothing and never imports vllm.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    # the agent
    "Agent": ".agent",
    "RunResult": ".agent",
    # messages of a conversation
    "Attachment": ".messages",
    "Message": ".messages",
    "ModelTurn": ".messages",
    "SummaryMessage": ".messages",
    "ToolCall": ".messages",
    "ToolResult": ".messages",
    "TurnUsage": ".messages",
    "UserMessage": ".messages",
    # engines: the protocol, starting one from settings, the model presets
    "Engine": ".engines.base",
    "EngineInfo": ".engines.base",
    "EngineConfig": ".engines.factory",
    "create_engine": ".engines.factory",
    "PRESETS": ".engines.presets",
    "ModelPreset": ".engines.presets",
    "find_preset": ".engines.presets",
    "model_problem": ".engines.presets",
    # media inputs
    "Audio": ".media",
    "Image": ".media",
    "MEDIA_SUFFIXES": ".media",
    "describe_attachment": ".media",
    "load_media": ".media",
    # saved sessions
    "SessionSummary": ".session",
    "saved_model": ".session",
}

__all__ = [
    "MEDIA_SUFFIXES",
    "PRESETS",
    "Agent",
    "Attachment",
    "Audio",
    "Engine",
    "EngineConfig",
    "EngineInfo",
    "Image",
    "Message",
    "ModelPreset",
    "ModelTurn",
    "RunResult",
    "SessionSummary",
    "SummaryMessage",
    "ToolCall",
    "ToolResult",
    "TurnUsage",
    "UserMessage",
    "create_engine",
    "describe_attachment",
    "find_preset",
    "load_media",
    "model_problem",
    "saved_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gemma_agent.agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .agent import Agent, RunResult
    from .engines.base import Engine, EngineInfo
    from .engines.factory import EngineConfig, create_engine
    from .engines.presets import PRESETS, ModelPreset, find_preset, model_problem
    from .media import MEDIA_SUFFIXES, Audio, Image, describe_attachment, load_media
    from .messages import (
        Attachment,
        Message,
        ModelTurn,
        SummaryMessage,
        ToolCall,
        ToolResult,
        TurnUsage,
        UserMessage,
    )
    from .session import SessionSummary, saved_model
