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
    "MemoryFile": ".context",
    "ProjectContext": ".context",
    # custom slash commands (.gemma-agent/commands/*.md)
    "CommandPrompt": ".commands",
    "CustomCommand": ".commands",
    "discover_commands": ".commands",
    "expand_command": ".commands",
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
    # OpenTelemetry (the `otel` extra; imported only when a run is traced)
    "Tracing": ".tracing",
    "Hooks": ".hooks",
    "load_hooks": ".hooks",
    "instrument_all": ".tracing",
    # saved sessions
    "SessionSummary": ".session",
    "saved_model": ".session",
    "SavedSession": ".replay",
    "read_session": ".replay",
    # checkpoints and rewind
    "Checkpoint": ".checkpoints",
    "FileChange": ".checkpoints",
    "RewindConflict": ".checkpoints",
    "RewindResult": ".checkpoints",
    # sub-agents (the task tool, Agent.as_tool)
    "AgentType": ".subagents",
    "SubagentRun": ".subagents",
    "TaskTool": ".subagents",
    # exact token ids of each engine request (training exports)
    "Step": ".steps",
    "read_steps": ".steps",
}

__all__ = [
    "MEDIA_SUFFIXES",
    "PRESETS",
    "Agent",
    "AgentType",
    "Attachment",
    "Audio",
    "Checkpoint",
    "CommandPrompt",
    "CustomCommand",
    "Engine",
    "EngineConfig",
    "EngineInfo",
    "FileChange",
    "Hooks",
    "Image",
    "MemoryFile",
    "Message",
    "ModelPreset",
    "ModelTurn",
    "ProjectContext",
    "RewindConflict",
    "RewindResult",
    "RunResult",
    "SavedSession",
    "SessionSummary",
    "Step",
    "SubagentRun",
    "SummaryMessage",
    "TaskTool",
    "ToolCall",
    "ToolResult",
    "Tracing",
    "TurnUsage",
    "UserMessage",
    "create_engine",
    "describe_attachment",
    "discover_commands",
    "expand_command",
    "find_preset",
    "instrument_all",
    "load_hooks",
    "load_media",
    "model_problem",
    "read_session",
    "read_steps",
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
    from .checkpoints import Checkpoint, FileChange, RewindConflict, RewindResult
    from .commands import CommandPrompt, CustomCommand, discover_commands, expand_command
    from .engines.base import Engine, EngineInfo
    from .engines.factory import EngineConfig, create_engine
    from .engines.presets import PRESETS, ModelPreset, find_preset, model_problem
    from .hooks import Hooks, load_hooks
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
    from .replay import SavedSession, read_session
    from .session import SessionSummary, saved_model
    from .steps import Step, read_steps
    from .subagents import AgentType, SubagentRun, TaskTool
    from .tracing import Tracing, instrument_all
