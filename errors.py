"""The exception tree of gemma-agent.

::

    AgentError                      base of everything we raise on purpose
    ├── ConfigError                 the user's mistake; the message says how to fix it
    │   └── RenderError             history/tools that the Gemma 4 template cannot render
    └── EngineError                 the model engine failed
        ├── EngineUnavailable       dead or unreachable: restart or reconfigure
        └── EngineRequestFailed     this request failed; retrying may help
            └── StreamBroken        its stream broke mid-way and cannot be resumed: redo it

Problems the model made (bad arguments, unparsable output, a tool raising ``ToolError`` or
crashing) are not exceptions: they become results the model reads, and end the run only past a
limit. A run that stops at a limit is not an exception either: its `RunResult` (or the final
`RunFinished` event) says why in ``reason`` and ``error``. Errors crossing a boundary are
translated with ``raise ... from``.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class of every error gemma-agent raises on purpose."""


class ConfigError(AgentError):
    """Invalid configuration or input from the user; the message says what to do."""


class RenderError(ConfigError):
    """Messages or tools the Gemma 4 chat template cannot render (names the message index)."""


class EngineError(AgentError):
    """The model engine failed."""


class EngineUnavailable(EngineError):
    """The engine is dead, not installed or unreachable; it must be restarted or reconfigured."""


class EngineRequestFailed(EngineError):
    """One request failed; the engine itself is alive and a retry may succeed."""


class StreamBroken(EngineRequestFailed):
    """The response stream broke after output had arrived and the engine cannot resume it
    (a grammar is active: the server's grammar would restart at the appended ids). The
    request can be redone from the start, on another replica; what arrived is discarded."""


__all__ = [
    "AgentError",
    "ConfigError",
    "EngineError",
    "EngineRequestFailed",
    "EngineUnavailable",
    "RenderError",
    "StreamBroken",
]
