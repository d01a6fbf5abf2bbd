"""The Gemma 4 wire format: byte-exact prompt rendering, safe tokenization, output parsing.

Pure and I/O-free; imports only the stdlib, jinja2, pydantic and ``gemma_agent.errors``.
"""

from __future__ import annotations

from .parse import (
    ContentDelta,
    ParsedOutput,
    ParsedToolCall,
    ParseEvent,
    ReasoningDelta,
    StreamParser,
    ToolCallArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    parse_output,
)
from .render import (
    TEMPLATE_HASHES,
    VALID_VARIANTS,
    family_from_template,
    history_to_dicts,
    render_chat,
    render_ids,
    render_tool_responses,
    template_family,
    tokenize_continuation,
    tokenize_tool_responses,
)
from .schema import normalize_schema, tool_declaration

__all__ = [
    "TEMPLATE_HASHES",
    "VALID_VARIANTS",
    "ContentDelta",
    "ParseEvent",
    "ParsedOutput",
    "ParsedToolCall",
    "ReasoningDelta",
    "StreamParser",
    "ToolCallArgsDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "family_from_template",
    "history_to_dicts",
    "normalize_schema",
    "parse_output",
    "render_chat",
    "render_ids",
    "render_tool_responses",
    "template_family",
    "tokenize_continuation",
    "tokenize_tool_responses",
    "tool_declaration",
]
