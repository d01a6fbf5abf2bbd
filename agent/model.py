"""The model layer: history → Gemma 4 prompt ids → engine → streaming parser → a model turn.

Within an agent turn every tool round is an exact append (docs/format.md, 'Exact appends and the
prefix cache'): the next prompt is ``P + G' + continuation`` where ``P`` is the previous prompt,
``G'`` the generated ids with their tail normalised to ``<|tool_response>`` and the continuation
the rendered tool responses. Nothing is re-rendered or re-tokenized per step, so the engine's
prefix cache always hits and the per-step cost does not grow with the history. A new user
message (or a compaction) re-renders the whole history canonically once.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import StreamBroken
from ..prompts import tokens as T
from ..prompts.parse import ContentDelta, ParsedOutput, ReasoningDelta, StreamParser
from ..prompts.render import render_ids, tokenize_tool_responses
from .engines.base import Engine, EngineRequest, FinishReason, MediaItem, PromptIds
from .events import Emit, Notice, TextDelta, ThinkingDelta
from .media import media_expansion, prompt_attachments
from .media_tokens import media_item_tokens
from .messages import (
    Attachment,
    Message,
    ModelTurn,
    ToolCall,
    ToolResult,
    TurnUsage,
    UserMessage,
)


@dataclass(slots=True)
class Generation:
    """One engine request and what came back."""

    prompt_len: int  # as the engine holds it: ids plus the expansion of the media placeholders
    ids: list[int]  # G: every generated id, stop id included
    parsed: ParsedOutput
    finish_reason: FinishReason | None
    usage: TurnUsage
    seconds: float
    tokens_per_second: float
    calls: list[ToolCall] = field(default_factory=list)  # complete calls, with ids
    call_errors: dict[str, str] = field(default_factory=dict)  # call id → why args are bad
    first_token_seconds: float | None = None  # time to the first generated token
    # Attempts whose stream broke mid-way and were redone from the start (`StreamBroken`):
    # never part of the turn, but their tokens were spent (the run's usage counts them).
    redone: list[Generation] = field(default_factory=list)

    def turn(self) -> ModelTurn:
        p = self.parsed
        return ModelTurn(
            reasoning=p.reasoning or None,
            text=p.content.strip(),
            tool_calls=tuple(self.calls),
            usage=self.usage,
        )


class ModelLayer:
    """Renders, generates and parses for one conversation; keeps the in-flight prompt ids."""

    # Redos of a request whose stream broke mid-way with a grammar (`StreamBroken`): the
    # engine has taken the failed replica out, so a redo normally lands on another one.
    max_redos = 2

    def __init__(
        self,
        engine: Engine,
        *,
        declarations: Sequence[dict[str, Any]],
        instructions: str | None,
        thinking: bool,
        max_output_tokens: int,
        media: Callable[[Sequence[Attachment]], list[MediaItem]] | None = None,
        routing_key: str | None = None,
    ) -> None:
        self.engine = engine
        # Sent with every request (the session id): replicas keep a session on one server.
        self.routing_key = routing_key
        self.tokenizer = engine.tokenizer
        self.variant = engine.info.variant
        self.declarations = list(declarations)
        self.instructions = instructions
        self.thinking = thinking
        self.max_output_tokens = max_output_tokens
        self._media_loader = media
        self._media_cache: dict[int, tuple[Attachment, MediaItem]] = {}
        # The prompt ids ready for the next request, and the history they stand for.
        self._live: list[int] = []
        self._synced: list[Message] | None = None
        # What the engine adds to `_live` by expanding its media placeholders (vLLM replaces
        # each <|image|> with <|image> + soft tokens + <image|>). Appends never add media.
        self._live_extra = 0
        self._stop_ids = {self.tokenizer.control_id(m) for m in T.STOP_MARKERS}
        self._ctl = self.tokenizer.control_id
        self._partial: tuple[StreamParser, list[int]] | None = None
        self._live_id = 0  # bumped on every render (media are collected once per render)
        self._media_key = -1
        self._media: list[MediaItem] = []
        # A finished tool round waiting to be appended: (turn, G', response ids).
        self._staged: tuple[ModelTurn, list[int], list[int]] | None = None

    @property
    def context_limit(self) -> int:
        """Usable context: the model's max length minus the reserve for the next output."""
        return max(self.engine.info.max_model_len - self.max_output_tokens, 0)

    def invalidate(self) -> None:
        """Forget the live prompt: the next request re-renders."""
        self._synced = None
        self._staged = None
        self._live = []
        self._live_extra = 0

    def in_sync(self, history: Sequence[Message]) -> bool:
        s = self._synced
        return (
            s is not None
            and len(s) == len(history)
            and all(map(operator.is_, s, history))  # identity: cheap, and exact for our appends
        )

    def render(self, history: Sequence[Message]) -> list[int]:
        # prompts renders our typed messages directly (text before calls as its own message,
        # results as native tool_responses).
        system = [{"role": "system", "content": self.instructions}] if self.instructions else []
        msgs: list[Any] = [*system, *history]
        return render_ids(
            msgs,
            self.declarations or None,
            self.tokenizer,
            variant=self.variant,
            enable_thinking=self.thinking,
            add_generation_prompt=True,
        )

    def prompt_for(self, history: Sequence[Message]) -> list[int]:
        """The prompt ids for the next step: the live append, or a fresh canonical render."""
        if not self.in_sync(history):
            self._live = self.render(history)
            self._live_extra = self.media_extra(history)
            self._live_id += 1
            self._synced = list(history)
        return self._live

    @property
    def image_soft_tokens(self) -> int:
        """The engine's soft-token budget per image (vLLM's max_soft_tokens)."""
        return self.engine.info.image_soft_tokens

    def media_extra(self, history: Sequence[Message]) -> int:
        """Ids the engine adds to the prompt of ``history`` by expanding its media placeholders
        (each attachment's size is read once, see `media.attachment_tokens`). Without a media
        loader no media reach the engine: its placeholders stay single ids."""
        if self._media_loader is None:
            return 0
        return media_expansion(
            prompt_attachments(history), image_soft_tokens=self.image_soft_tokens
        )

    def prompt_tokens(self, prompt: Sequence[int]) -> int:
        """Length of a prompt from `prompt_for` as the engine holds it (media expanded)."""
        return len(prompt) + (self._live_extra if prompt is self._live else 0)

    def count_tokens(self, history: Sequence[Message]) -> int:
        """Exact context size of a history as the engine sees it (system turn and tools
        included, each image or audio placeholder expanded to its soft tokens).

        The live history (and the live history plus a staged tool round) are counted from the
        ids already built and the live media expansion: O(1) work per step. Any other history
        is rendered.
        """
        if self.in_sync(history):
            return len(self._live) + self._live_extra
        if self._staged_fits(history) and history[-1] is self._staged[0]:  # type: ignore[index]
            staged = len(self._staged[1]) + len(self._staged[2])  # type: ignore[index]
            return len(self._live) + staged + self._live_extra  # a staged round has no media
        return len(self.render(history)) + self.media_extra(history)

    def context_tokens(self, history: Sequence[Message]) -> int:
        """`count_tokens` for the run's own history: a render is kept for the next request."""
        if self.in_sync(history) or self._staged_fits(history):
            return self.count_tokens(history)
        return self.prompt_tokens(self.prompt_for(history))

    def media_for(self, history: Sequence[Message]) -> list[MediaItem]:
        """The media of the prompt, in placeholder order: a user message's after its text, a
        tool result's after its ``<tool_response|>``. An exact append never adds media (a tool
        round with media re-renders, see `stage_tool_round`), so they are collected again only
        after a re-render."""
        if self._media_loader is None:
            return []
        key = self._live_id
        if self._media_key == key:
            return self._media
        atts = prompt_attachments(history)
        self._media = self._load_media(atts)
        self._media_key = key
        if len(self._media_cache) > len(atts):  # forget media the history no longer holds
            keep = {id(a) for a in atts}
            self._media_cache = {k: v for k, v in self._media_cache.items() if k in keep}
        return self._media

    def _load_media(self, attachments: Sequence[Attachment]) -> list[MediaItem]:
        """Decoded media, each attachment decoded once (kept with the attachment object)."""
        assert self._media_loader is not None
        items: list[MediaItem] = []
        for a in attachments:
            hit = self._media_cache.get(id(a))
            if hit is None:
                hit = (a, self._media_loader([a])[0])
                self._media_cache[id(a)] = hit
            items.append(hit[1])
        return items

    async def generate(
        self,
        prompt: Sequence[int],
        *,
        step: int,
        emit: Emit,
        max_tokens: int,
        thinking_budget: int | None = None,
        grammar: str | None = None,
        media: Sequence[MediaItem] = (),
        temperature: float | None = None,
        seed: int | None = None,
        stream: bool = True,
        prompt_tokens: int | None = None,
    ) -> Generation:
        """Run one request; stream thinking/text deltas through ``emit``; parse the result.

        ``prompt_tokens``: the prompt's length as the engine holds it (media expanded); by
        default `prompt_tokens(prompt)` for the live prompt, else counted from ``media``.

        A stream that breaks mid-way and cannot be resumed (`StreamBroken`) is redone from the
        start up to `max_redos` times, with a `Notice`; the deltas already streamed are then
        superseded by the turn (consumers take the turn from `TurnFinished`).
        """
        if prompt_tokens is None:
            if prompt is self._live:
                prompt_tokens = self.prompt_tokens(prompt)
            else:
                soft = self.image_soft_tokens
                extra = sum(media_item_tokens(m, image_soft_tokens=soft) - 1 for m in media)
                prompt_tokens = len(prompt) + extra
        request = EngineRequest(
            # A view, not a copy: the live list is append-only (O(1) per step).
            prompt_ids=PromptIds(prompt) if isinstance(prompt, list) else prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            grammar=grammar,
            thinking_budget=thinking_budget if self.thinking else None,
            media=tuple(media),
            routing_key=self.routing_key,
        )
        redone: list[Generation] = []
        for attempt in range(self.max_redos + 1):
            started = time.perf_counter()
            try:
                gen = await self._stream(request, prompt, prompt_tokens, step, emit, stream)
            except StreamBroken as e:
                if attempt == self.max_redos or self._partial is None:
                    raise
                # What arrived is dropped (never a turn); its tokens were spent all the same.
                parser, ids = self._partial
                usage = TurnUsage(
                    prompt_tokens=prompt_tokens,
                    generated_tokens=len(ids),
                    thinking_tokens=self._thinking_tokens(prompt, ids),
                )
                seconds = time.perf_counter() - started
                redone.append(
                    Generation(prompt_tokens, ids, parser.finish(), None, usage, seconds, 0.0)
                )
                emit(
                    Notice(
                        f"the stream broke mid-way and a grammar is active, so it cannot be "
                        f"resumed: step {step} is redone from the start on another replica "
                        f"(attempt {attempt + 2} of {self.max_redos + 1}; {e})",
                        "warning",
                        step,
                    )
                )
                continue
            gen.redone = redone
            return gen
        raise AssertionError("unreachable")

    async def _stream(
        self,
        request: EngineRequest,
        prompt: Sequence[int],
        prompt_tokens: int,
        step: int,
        emit: Emit,
        stream: bool,
    ) -> Generation:
        """One engine request, parsed as it streams (`partial_turn` reads it meanwhile)."""
        parser = StreamParser(
            self.declarations or None,
            thinking=self.thinking,
            tokenizer=self.tokenizer,
            prompt_tail_ids=list(prompt[-64:]),
        )
        ids: list[int] = []
        self._partial = (parser, ids)
        finish: FinishReason | None = None
        usage = None
        started = time.perf_counter()
        first_token: float | None = None
        async for delta in self.engine.generate(request):
            if delta.token_ids:
                if first_token is None:
                    first_token = time.perf_counter()
                ids.extend(delta.token_ids)
                for ev in parser.feed_ids(delta.token_ids):
                    if not stream:
                        continue
                    if isinstance(ev, ReasoningDelta):
                        emit(ThinkingDelta(ev.text, step))
                    elif isinstance(ev, ContentDelta):
                        emit(TextDelta(ev.text, step))
            if delta.finish_reason is not None:
                finish = delta.finish_reason
            if delta.usage is not None:
                usage = delta.usage
        self._partial = None
        parsed = parser.finish()
        if parsed.reasoning_as_content and stream:
            # The answer was written inside a thought channel the model never closed: it
            # streamed as thinking; say it as the answer too (the turn holds it as both).
            emit(TextDelta(parsed.content, step))
        seconds = time.perf_counter() - started
        gen_time = time.perf_counter() - (first_token or started)
        thinking = self._thinking_tokens(prompt, ids)
        turn_usage = TurnUsage(
            prompt_tokens=usage.prompt_tokens if usage else len(prompt),
            cached_prompt_tokens=usage.cached_prompt_tokens if usage else 0,
            generated_tokens=usage.generated_tokens if usage else len(ids),
            thinking_tokens=thinking,
        )
        tps = len(ids) / gen_time if gen_time > 0 else 0.0
        calls: list[ToolCall] = []
        errors: dict[str, str] = {}
        for c in parsed.tool_calls:
            if c.complete:
                call = ToolCall(name=c.name, arguments=dict(c.arguments or {}))
                calls.append(call)
                if c.error:
                    errors[call.id] = f"Could not read the arguments of {c.name}: {c.error}"
        ttft = first_token - started if first_token is not None else None
        return Generation(
            prompt_tokens, ids, parsed, finish, turn_usage, seconds, tps, calls, errors, ttft
        )

    def partial_turn(self) -> ModelTurn | None:
        """What an interrupted request had produced: reasoning and text, never a partial call."""
        if self._partial is None:
            return None
        parser, ids = self._partial
        self._partial = None
        if not ids:
            return None
        parsed = parser.finish()
        if not (parsed.reasoning or parsed.content.strip()):
            return None
        return ModelTurn(reasoning=parsed.reasoning or None, text=parsed.content.strip())

    def prompt_in_thought(self, prompt: Sequence[int]) -> bool:
        """The prompt ends inside an open thought channel (after a tool round, thinking on)."""
        marker = self.tokenizer.control_marker
        for token_id in reversed(prompt[-64:]):
            m = marker(token_id)
            if m is not None and m != T.STR:
                return m == T.CHANNEL_OPEN
        return False

    def _thinking_tokens(self, prompt: Sequence[int], ids: Sequence[int]) -> int:
        """Ids generated inside the thought channel (the prompt may have opened it)."""
        ch_open, ch_close = self._ctl(T.CHANNEL_OPEN), self._ctl(T.CHANNEL_CLOSE)
        inside = self.prompt_in_thought(prompt)
        if not inside and ch_open not in ids:
            return 0
        n = 0
        for t in ids:
            if t == ch_open:
                inside = True
            elif t == ch_close or t in self._stop_ids:
                inside = False
            elif inside:
                n += 1
        return n

    def stage_tool_round(self, generation: Generation, turn: ModelTurn) -> None:
        """Prepare ``G' + responses`` for a finished tool round (``turn`` has its results).

        The append happens in `apply_staged`, after the compactor had its chance to shorten
        the fresh results, so a clipped result does not cost a re-render. A round whose
        results carry images or audio is not staged: the next request re-renders the history,
        which places the media placeholders after the tool responses (docs/format.md, 'Tool
        responses').
        """
        if any(r.attachments for r in turn.tool_results):
            self._staged = None
            return
        ids = list(generation.ids)
        tr_open = self._ctl(T.TOOL_RESPONSE_OPEN)
        if not ids or ids[-1] != tr_open:
            if ids and ids[-1] in self._stop_ids:
                ids.pop()  # <turn|> or <eos> where <|tool_response> belonged (robustness 8, 9)
            tc_open, tc_close = self._ctl(T.TOOL_CALL_OPEN), self._ctl(T.TOOL_CALL_CLOSE)
            if _rindex(ids, tc_open) > _rindex(ids, tc_close):
                ids.append(tc_close)
            ids.append(tr_open)
        self._staged = (turn, ids, self._responses(turn))

    def _responses(self, turn: ModelTurn) -> list[int]:
        responses = [(r.name, r.content) for r in turn.tool_results]
        return tokenize_tool_responses(responses, self.tokenizer, enable_thinking=self.thinking)

    def _staged_fits(self, history: Sequence[Message]) -> bool:
        """``history`` is the live history plus the staged turn (possibly compacted)."""
        s, staged = self._synced, self._staged
        if s is None or staged is None or len(history) != len(s) + 1:
            return False
        last = history[-1]
        return (
            isinstance(last, ModelTurn)
            and last.id == staged[0].id
            and all(map(operator.is_, s, history))
        )

    def apply_staged(self, history: Sequence[Message]) -> None:
        """Make ``P + G' + responses`` the live prompt when ``history`` allows the exact append;
        otherwise the next `prompt_for` re-renders."""
        if self._staged_fits(history):
            turn, ids, responses = self._staged  # type: ignore[misc]
            last = history[-1]
            if last is not turn:  # the compactor changed the fresh results (clipping)
                responses = self._responses(last)  # type: ignore[arg-type]
            self._live.extend(ids)
            self._live.extend(responses)
            self._synced = list(history)
        self._staged = None

    async def summarize(
        self,
        history: Sequence[Message],
        instruction: str,
        *,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> tuple[str, TurnUsage]:
        """Ask the model for a summary of ``history`` (compaction). Thinking off, no streaming;
        sampled as the run's steps are (``temperature`` 0: greedy, the same summary each time).

        The instruction is a user turn appended to the live prompt (`summary_prompt`), so the
        engine's prefix cache serves the whole conversation. The request carries the history's
        media like every step: without them the engine would read bare placeholder ids (and
        the cached prefix, which holds the expanded media, would break at the first one).
        """
        prompt = self.summary_prompt(history, instruction)
        media: list[MediaItem] = []
        if self._media_loader is not None:
            live = self.in_sync(history) or self._staged_fits(history)
            media = (
                self.media_for(history) if live else self._load_media(prompt_attachments(history))
            )
        size = len(prompt) + self.media_extra(history)
        room = self.engine.info.max_model_len - size
        if room <= 16:
            from ..errors import EngineRequestFailed

            raise EngineRequestFailed("no room left in the context for a summary")
        gen = await self.generate(
            prompt,
            step=0,
            emit=_drop,
            max_tokens=min(self.max_output_tokens, room),
            thinking_budget=0,
            media=media,
            temperature=temperature,
            seed=seed,
            stream=False,
            prompt_tokens=size,
        )
        return gen.parsed.content.strip() or (gen.parsed.reasoning or "").strip(), gen.usage

    def summary_prompt(self, history: Sequence[Message], instruction: str) -> list[int]:
        """The live prompt (with a staged tool round) cut after its last tool response, then
        ``<turn|>`` and the instruction as a user turn: an exact append. A canonical render
        would differ from the live ids wherever the model's own ids are not canonical (the turn's
        reasoning is dropped, argument text re-rendered; docs/format.md, 'Re-rendering differences')
        and break the cache there, often at the first step of the run. A history that is not the
        live one (a new user message, media in the last round) is rendered canonically.
        """
        base: list[int] | None = None
        if self._staged_fits(history):
            turn, ids, responses = self._staged  # type: ignore[misc]
            if history[-1] is not turn:  # the compactor changed the fresh results (clipping)
                responses = self._responses(history[-1])  # type: ignore[arg-type]
            base = [*self._live, *ids, *responses]
        elif self.in_sync(history) and isinstance(last := history[-1], ModelTurn):
            base = self._live if last.tool_results else None
        if base is not None:
            cut = _rindex(base, self._ctl(T.TOOL_RESPONSE_CLOSE)) + 1
            # After the last response only the thought opener may follow (thinking on).
            tail = base[cut:]
            opener = not tail or (
                tail[0] == self._ctl(T.CHANNEL_OPEN)
                and all(self.tokenizer.control_marker(t) is None for t in tail[1:])
            )
            if cut > 0 and opener:
                return [*base[:cut], *self._user_turn_after_round(instruction)]
        return self.render([*history, UserMessage(content=instruction)])

    def _user_turn_after_round(self, instruction: str) -> list[int]:
        """What the template writes after a tool round's last ``<tool_response|>`` when a
        user message follows (``<turn|>``, the user turn, the generation prompt with thinking
        off), read off a minimal render with this layer's variant."""
        call = ToolCall(id="c", name="f", arguments={})
        probe: list[Message] = [
            UserMessage(content="."),
            ModelTurn(
                tool_calls=(call,), tool_results=(ToolResult(call_id="c", name="f", content="."),)
            ),
            UserMessage(content=instruction),
        ]
        ids = render_ids(probe, None, self.tokenizer, variant=self.variant, enable_thinking=False)
        return ids[_rindex(ids, self._ctl(T.TOOL_RESPONSE_CLOSE)) + 1 :]

    def forget(self) -> None:
        """After a final answer the next user message re-renders the history canonically."""
        self._synced = None


def _drop(_event: object) -> None:
    return None


def _rindex(ids: Sequence[int], value: int) -> int:
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] == value:
            return i
    return -1
