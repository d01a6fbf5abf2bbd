"""The Engine protocol: token ids in, streamed token deltas out.

Engines know nothing of messages or tools: the model layer renders the Gemma 4 prompt,
tokenizes it (see ``prompts.tokens.Tokenizer``) and parses what comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ...prompts.tokens import Tokenizer

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One image or audio clip that belongs to the prompt (placeholders are in the ids)."""

    modality: Literal["image", "audio"]
    data: Any  # PIL.Image for images; (numpy array, sample_rate) for audio
    source: str = ""  # file name or description, for messages and logs


class PromptIds(Sequence[int]):
    """An O(1) snapshot of the first ``length`` ids of an append-only list.

    The model layer appends each tool round to one list of ids; handing every request a view
    instead of a copy keeps the per-step cost independent of the history's length. ``base``
    lets an engine see that two prompts share their storage (hence their prefix).
    """

    __slots__ = ("base", "length")

    def __init__(self, base: list[int], length: int | None = None) -> None:
        self.base = base
        self.length = len(base) if length is None else length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.length)
            return self.base[start:stop:step]
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError("prompt index out of range")
        return self.base[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self.base[: self.length])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(other) == self.length and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PromptIds(<{self.length} ids>)"


@dataclass(frozen=True, slots=True)
class EngineRequest:
    prompt_ids: Sequence[int]
    max_tokens: int = 4096
    temperature: float | None = None  # None: the model's generation_config default
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    # Extra stop ids on top of the engine's defaults (<turn|>, <|tool_response>, <eos>).
    stop_token_ids: Sequence[int] = ()
    # A Lark grammar (llguidance syntax, special tokens written as <|tool_call>) constraining
    # the whole output of this request; None = unconstrained.
    grammar: str | None = None
    # Cap on thinking tokens; at the cap the engine closes the channel and continues.
    # None = no cap; 0 = do not think in this request.
    thinking_budget: int | None = None
    media: Sequence[MediaItem] = ()
    request_id: str | None = None
    cache_salt: str | None = None
    # Which requests belong together (the session id): a multi-replica engine keeps them on
    # one replica, where their shared prefix is cached. None: no affinity.
    routing_key: str | None = None


@dataclass(frozen=True, slots=True)
class EngineUsage:
    prompt_tokens: int
    cached_prompt_tokens: int
    generated_tokens: int


@dataclass(frozen=True, slots=True)
class EngineDelta:
    """A piece of output. ``token_ids`` are authoritative; ``text`` is their decoded form."""

    token_ids: Sequence[int]
    text: str = ""
    finish_reason: FinishReason | None = None  # set on the last delta only
    usage: EngineUsage | None = None  # set on the last delta only


@dataclass(frozen=True, slots=True)
class EngineInfo:
    model: str  # preset name, HF id or local path
    variant: str  # "E2B", "E4B", "12B", "26B-A4B", "31B" or "tiny": picks the template family
    max_model_len: int
    supports_grammar: bool = False
    modalities: frozenset[str] = field(default_factory=lambda: frozenset({"text"}))
    # Soft tokens per image at most (vLLM's max_soft_tokens: 70, 140, 280, 560 or 1120): each
    # <|image|> placeholder becomes up to this many tokens plus <|image> and <image|>.
    image_soft_tokens: int = 280


@runtime_checkable
class Engine(Protocol):
    info: EngineInfo
    tokenizer: Tokenizer

    def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        """Stream one request. Cancelling the consumer aborts the request in the engine."""
        ...

    def count_tokens(self, text: str) -> int: ...

    async def aclose(self) -> None: ...
