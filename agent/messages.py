"""Typed conversation history.

A history is a list of `Message`: the user's messages, the model's turns and compaction
summaries. A `ModelTurn` is one model generation round (one engine request): its reasoning,
its text, the tool calls it made and their results. A call is never separated from its result,
so a turn is the unit compaction keeps or replaces. Consecutive `ModelTurn`s render as one
Gemma 4 model turn (docs/format.md, 'Placement within a model turn').
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Attachment(_Frozen):
    """An image or audio clip attached to a user message (or returned by a tool)."""

    kind: Literal["image", "audio"]
    name: str  # file name shown to people
    mime: str
    data_b64: str  # the file's bytes, base64: sessions stay self-contained


class UserMessage(_Frozen):
    role: Literal["user"] = "user"
    id: str = Field(default_factory=lambda: new_id("u"))
    content: str
    attachments: tuple[Attachment, ...] = ()
    pinned: bool = False


class ToolCall(_Frozen):
    id: str = Field(default_factory=lambda: new_id("call"))
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(_Frozen):
    call_id: str
    name: str
    # A JSON value. A dict renders as a native mapping response; anything else as `value:`.
    content: Any
    is_error: bool = False
    # Where the full output lives when `content` was clipped or cleared (see tools.SpillStore).
    spill_id: str | None = None
    attachments: tuple[Attachment, ...] = ()


class TurnUsage(_Frozen):
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    thinking_tokens: int = 0


class ModelTurn(_Frozen):
    role: Literal["model"] = "model"
    id: str = Field(default_factory=lambda: new_id("t"))
    reasoning: str | None = None
    text: str = ""  # the final answer, or text written before the calls
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()  # in call order, one per call once executed
    usage: TurnUsage = Field(default_factory=TurnUsage)
    pinned: bool = False


class SummaryMessage(_Frozen):
    """Replaces compacted turns; rendered to the model as a user message."""

    role: Literal["summary"] = "summary"
    id: str = Field(default_factory=lambda: new_id("s"))
    content: str
    replaces: tuple[str, ...] = ()  # ids of the messages it stands for
    pinned: bool = False
    # Facts computed from the replaced messages (compaction.compute_facts): kept structured so
    # that a later summary merges them instead of losing them.
    facts: dict[str, Any] = Field(default_factory=dict)


Message = Annotated[UserMessage | ModelTurn | SummaryMessage, Field(discriminator="role")]
