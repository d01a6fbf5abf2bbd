"""The request loop both real engines share: streaming, thinking budget, usage.

An engine supplies ``run_segment(prompt_ids, max_tokens, ban_thought)``: one backend request
streaming ``Chunk``s; closing that iterator must abort the backend request. ``stream`` turns it
into ``EngineDelta``s and enforces ``EngineRequest.thinking_budget``: when the thought channel
reaches the cap it stops the segment, emits ``<channel|>`` itself and continues with a new
segment whose prompt is the old one plus everything generated (an append, so the prefix cache
serves it). Once the budget is spent, segments ban ``<|channel>`` (``ban_thought``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from ...prompts import tokens as T
from ...prompts.tokens import Tokenizer
from .base import EngineDelta, EngineRequest, EngineUsage, FinishReason


@dataclass(frozen=True, slots=True)
class Chunk:
    token_ids: Sequence[int]
    finish_reason: FinishReason | None = None  # set when the backend request finished
    cached_prompt_tokens: int | None = None  # reported by the backend (first chunk or last)
    # The prompt length the model saw, when the backend says: media placeholders expanded.
    prompt_tokens: int | None = None


RunSegment = Callable[[list[int], int, bool], AsyncGenerator[Chunk, None]]


def prompt_in_thought(ids: Sequence[int], tokenizer: Tokenizer) -> bool:
    """Whether the prompt ends inside an open thought channel (docs/format.md, 'Streaming
    parser')."""
    ch_open = tokenizer.control_id(T.CHANNEL_OPEN)
    closers = {
        tokenizer.control_id(m)
        for m in (T.CHANNEL_CLOSE, T.TOOL_CALL_OPEN, T.TURN_OPEN, T.TOOL_RESPONSE_OPEN)
    }
    for t in reversed(ids):
        if t == ch_open:
            return True
        if t in closers:
            return False
    return False


class TextDecoder:
    """Text of generated ids: control ids as their marker, others decoded incrementally."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        self._dec = tokenizer.new_decoder()

    def text(self, ids: Sequence[int]) -> str:
        out = []
        for t in ids:
            marker = self._tok.control_marker(t)
            out.append(marker if marker is not None else self._dec.step(t))
        return "".join(out)


async def stream(
    request: EngineRequest,
    tokenizer: Tokenizer,
    max_total: int,
    run_segment: RunSegment,
) -> AsyncIterator[EngineDelta]:
    ids = list(request.prompt_ids)
    stop_ids = {tokenizer.control_id(m) for m in T.STOP_MARKERS}
    ch_open = tokenizer.control_id(T.CHANNEL_OPEN)
    ch_close = tokenizer.control_id(T.CHANNEL_CLOSE)
    budget = request.thinking_budget
    in_thought = prompt_in_thought(ids, tokenizer)
    decoder = TextDecoder(tokenizer)
    emitted: list[int] = []
    thought = 0
    cached: int | None = None
    prompt_tokens: int | None = None

    def usage() -> EngineUsage:
        return EngineUsage(prompt_tokens or len(ids), cached or 0, len(emitted))

    if in_thought and budget is not None and budget <= 0:
        # Thinking off for this step: close the channel the prompt opened.
        emitted.append(ch_close)
        in_thought = False
        yield EngineDelta([ch_close], decoder.text([ch_close]))

    while True:
        spent = budget is not None and thought >= budget
        segment = run_segment(ids + emitted, max_total - len(emitted), spent)
        cut = False
        try:
            async for chunk in segment:
                if cached is None and chunk.cached_prompt_tokens is not None:
                    cached = chunk.cached_prompt_tokens
                if prompt_tokens is None and chunk.prompt_tokens is not None:
                    prompt_tokens = chunk.prompt_tokens  # the first segment's: no output in it
                keep: list[int] = []
                for t in chunk.token_ids:
                    keep.append(t)
                    if t == ch_open:
                        in_thought = True
                    elif t == ch_close:
                        in_thought = False
                    elif in_thought and t not in stop_ids:
                        thought += 1
                    if (
                        budget is not None
                        and in_thought
                        and thought >= budget
                        and t not in stop_ids
                    ):
                        cut = True
                        break
                emitted += keep
                if cut:
                    if keep:
                        yield EngineDelta(keep, decoder.text(keep))
                    break
                if chunk.finish_reason is not None:
                    yield EngineDelta(keep, decoder.text(keep), chunk.finish_reason, usage())
                    return
                if keep:
                    yield EngineDelta(keep, decoder.text(keep))
        finally:
            await segment.aclose()  # aborts the backend request if it is still running
        if not cut:
            # The stream ended without a finish (aborted from elsewhere).
            yield EngineDelta([], "", "abort", usage())
            return
        # Thinking budget reached: close the channel, continue as an append.
        emitted.append(ch_close)
        in_thought = False
        yield EngineDelta([ch_close], decoder.text([ch_close]))
        if len(emitted) >= max_total:
            yield EngineDelta([], "", "length", usage())
            return
