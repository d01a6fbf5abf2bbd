"""ScriptedEngine: a deterministic engine for tests (ours and users').

Each request consumes the next scripted output: a string (the model's raw output, control
markers written as text, e.g. ``'<|tool_call>call:ls{path:<|"|>.<|"|>}<tool_call|>'``), an
exception (raised as the request's failure) or a callable ``(ScriptedRequest) -> str``. A string
without a final stop marker gets one: ``<|tool_response>`` after a tool call, else ``<turn|>``.

``modalities=("image", "audio")`` declares a multimodal model: requests may then carry media,
and, as in vLLM, each must match one ``<|image|>``/``<|audio|>`` placeholder id of the prompt.
Like vLLM it counts each medium as its expanded size (``<|image>`` + soft tokens + ``<image|>``,
``image_soft_tokens`` per image at most): in the usage it reports and in its refusal of a
prompt that does not fit ``max_model_len``.

    engine = ScriptedEngine(["Hello!"])
    agent = Agent(engine=engine)
    assert agent.run_sync("hi").output == "Hello!"
    engine.assert_complete()

`ScriptedEngine.tool_call` and `ScriptedEngine.thought` write the model's output for you::

    call = ScriptedEngine.tool_call
    ScriptedEngine([ScriptedEngine.thought("Add them.") + call("add", a=1, b=2), "It is 3."])
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...prompts.tokens import (
    AUDIO,
    CHANNEL_CLOSE,
    CHANNEL_OPEN,
    IMAGE,
    STOP_MARKERS,
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    TOOL_RESPONSE_OPEN,
    TURN_CLOSE,
    ByteTokenizer,
    Tokenizer,
)
from ..media_tokens import media_item_tokens
from .base import EngineDelta, EngineInfo, EngineRequest, EngineUsage, FinishReason, PromptIds

_Q = '<|"|>'  # the Gemma 4 string delimiter


def _value(v: Any) -> str:
    """A value as Gemma 4 writes it in a call: strings delimited, bare keys, JSON literals."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return f"{_Q}{v}{_Q}"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=str.lower)  # the chat template's order
        return "{" + ",".join(f"{k}:{_value(v[k])}" for k in keys) + "}"
    raise TypeError(f"tool_call: {type(v).__name__} is not a JSON value")


def tool_call(name: str, **arguments: Any) -> str:
    """One complete tool call as the model writes it (keys sorted, as the template renders)."""
    return f"{TOOL_CALL_OPEN}call:{name}{_value(arguments)}{TOOL_CALL_CLOSE}"


def thought(text: str) -> str:
    """A thinking block as the model writes it (with thinking on)."""
    return f"{CHANNEL_OPEN}thought\n{text}{CHANNEL_CLOSE}"


@dataclass(slots=True)
class ScriptedRequest:
    """One request the engine received; ids are copied and text decoded only when asked for."""

    request: EngineRequest
    tokenizer: Tokenizer = field(repr=False)
    output: str = ""  # what the engine answered (after the stop marker was added)
    _ids: tuple[int, ...] | None = field(default=None, repr=False)

    @property
    def prompt_ids(self) -> tuple[int, ...]:
        if self._ids is None:
            self._ids = tuple(self.request.prompt_ids)
        return self._ids

    @property
    def prompt_text(self) -> str:
        return self.tokenizer.decode(self.prompt_ids)


ScriptedOutput = str | BaseException | Callable[[ScriptedRequest], str]


class ScriptedEngine:
    """An `Engine` that replays scripted outputs and records every request."""

    tool_call = staticmethod(tool_call)
    thought = staticmethod(thought)

    def __init__(
        self,
        outputs: Sequence[ScriptedOutput] = (),
        *,
        tokenizer: Tokenizer | None = None,
        chunk_tokens: int = 3,
        token_delay: float = 0.0,
        variant: str = "E4B",
        max_model_len: int = 32768,
        supports_grammar: bool = False,
        model: str = "scripted",
        modalities: Iterable[str] = ("text",),
        image_soft_tokens: int = 280,
    ) -> None:
        if chunk_tokens < 1:
            raise ValueError("chunk_tokens must be at least 1")
        if image_soft_tokens not in (70, 140, 280, 560, 1120):
            raise ValueError(
                f"image_soft_tokens must be 70, 140, 280, 560 or 1120 (Gemma 4), "
                f"not {image_soft_tokens}"
            )
        self.tokenizer: Tokenizer = tokenizer or ByteTokenizer()
        self.info = EngineInfo(
            model=model,
            variant=variant,
            max_model_len=max_model_len,
            supports_grammar=supports_grammar,
            modalities=frozenset({"text", *modalities}),
            image_soft_tokens=image_soft_tokens,
        )
        self.outputs: list[ScriptedOutput] = list(outputs)
        self.requests: list[ScriptedRequest] = []
        self.chunk_tokens = chunk_tokens
        self.token_delay = token_delay
        self.closed = False
        self._next = 0
        # The previous request (prompt, output ids): the simulated prefix cache.
        self._last: tuple[Sequence[int], list[int]] | None = None
        self._stop_ids = {self.tokenizer.control_id(m) for m in STOP_MARKERS}
        # Placeholder positions found so far in an append-only prompt list: (list, length
        # scanned, [(position, modality)]). The next prompt on the same list scans its tail only.
        self._scan: tuple[list[int] | None, int, list[tuple[int, str]]] = (None, 0, [])

    def add(self, *outputs: ScriptedOutput) -> None:
        self.outputs.extend(outputs)

    @property
    def remaining(self) -> int:
        return len(self.outputs) - self._next

    def assert_complete(self) -> None:
        """Fail unless every scripted output was consumed."""
        if self._next != len(self.outputs):
            raise AssertionError(
                f"ScriptedEngine: {self.remaining} of {len(self.outputs)} scripted outputs "
                f"were not requested (next: {self.outputs[self._next]!r:.80})"
            )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    async def aclose(self) -> None:
        self.closed = True

    def _cached_prefix(self, prompt: Sequence[int]) -> int:
        """Length of the common prefix with the previous request's prompt + output."""
        if self._last is None:
            return 0
        prev, out = self._last
        if (
            isinstance(prompt, PromptIds)
            and isinstance(prev, PromptIds)
            and prompt.base is prev.base
            and len(prompt) >= len(prev)
        ):
            # Same append-only storage: the previous prompt is a prefix. Compare the output only.
            n = len(prev)
            tail = prompt[n : n + len(out)]
            k = 0
            while k < len(tail) and tail[k] == out[k]:
                k += 1
            return n + k
        seen = [*prev, *out]
        n = min(len(seen), len(prompt))
        a, b = list(prompt[:n]), seen[:n]
        if a == b:
            return n
        return next(i for i in range(n) if a[i] != b[i])

    def _check_media(self, request: EngineRequest) -> list[tuple[int, int]]:
        """What vLLM checks: modalities the model takes, one media item per placeholder id.

        Returns (position, ids added) for each placeholder: the expansion of its medium.
        """
        kinds = {m.modality for m in request.media}
        if kinds - self.info.modalities:
            from ...errors import ConfigError

            raise ConfigError(
                f"this engine takes {sorted(self.info.modalities)} input, not "
                f"{sorted(kinds - self.info.modalities)} (ScriptedEngine(modalities=...))"
            )
        if not request.media and self.info.modalities == {"text"}:
            return []  # text-only: no scan, requests stay O(1) in the prompt's length
        found = self._placeholders(request.prompt_ids)
        expansion: list[tuple[int, int]] = []
        for kind, marker in (("image", IMAGE), ("audio", AUDIO)):
            at = [pos for pos, k in found if k == kind]
            items = [m for m in request.media if m.modality == kind]
            if len(at) != len(items):
                from ...errors import EngineRequestFailed

                raise EngineRequestFailed(
                    f"the prompt has {len(at)} {marker} placeholders but {len(items)} {kind} "
                    "items were passed"
                )
            if items:
                soft = self.info.image_soft_tokens
                for pos, item in zip(at, items, strict=True):
                    expansion.append((pos, media_item_tokens(item, image_soft_tokens=soft) - 1))
        return expansion

    def _placeholders(self, prompt: Sequence[int]) -> list[tuple[int, str]]:
        """(position, modality) of every media placeholder id, in order."""
        ids = {self.tokenizer.control_id(IMAGE): "image", self.tokenizer.control_id(AUDIO): "audio"}
        base, scanned, found = self._scan
        if isinstance(prompt, PromptIds) and prompt.base is base and len(prompt) >= scanned:
            start, found = scanned, list(found)  # the same append-only list: scan the tail
            source: list[int] = prompt.base
        else:
            start, found = 0, []
            source = prompt.base if isinstance(prompt, PromptIds) else list(prompt)
        for pos in range(start, len(prompt)):
            kind = ids.get(source[pos])
            if kind is not None:
                found.append((pos, kind))
        if isinstance(prompt, PromptIds):
            self._scan = (prompt.base, len(prompt), found)
        return found

    def _with_stop(self, text: str) -> str:
        if text.endswith(STOP_MARKERS):
            return text
        tail = text.rfind(TOOL_CALL_OPEN)
        is_call = tail >= 0 and TOOL_CALL_CLOSE in text[tail:]
        return text + (TOOL_RESPONSE_OPEN if is_call else TURN_CLOSE)

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        if self.closed:
            from ...errors import EngineUnavailable

            raise EngineUnavailable("ScriptedEngine is closed")
        await asyncio.sleep(0)  # a real engine suspends here: let other tasks (and consumers) run
        prompt = request.prompt_ids
        record = ScriptedRequest(request, self.tokenizer)
        if not isinstance(prompt, PromptIds):
            record._ids = tuple(prompt)  # a caller's list may change later: snapshot it now
        self.requests.append(record)
        expansion = self._check_media(request)
        prompt_len = len(prompt) + sum(n for _, n in expansion)
        if prompt_len >= self.info.max_model_len:
            from ...errors import EngineRequestFailed

            raise EngineRequestFailed(  # vLLM's check, media expanded
                f"the prompt ({prompt_len} tokens) plus at least one output token is longer than "
                f"the maximum model length of {self.info.max_model_len}"
            )
        if self._next >= len(self.outputs):
            raise AssertionError(
                f"ScriptedEngine: request {len(self.requests)} but only "
                f"{len(self.outputs)} outputs were scripted"
            )
        item = self.outputs[self._next]
        self._next += 1
        if isinstance(item, BaseException):
            raise item
        text = item(record) if callable(item) else item
        text = self._with_stop(text)
        record.output = text
        ids = self.tokenizer.encode(text)
        finish: FinishReason = "stop"
        if len(ids) > request.max_tokens:
            ids, finish = ids[: request.max_tokens], "length"
        elif ids and ids[-1] not in self._stop_ids:
            finish = "length"
        cached = self._cached_prefix(prompt)
        cached += sum(n for pos, n in expansion if pos < cached)  # counted expanded, as in vLLM
        self._last = (prompt, ids)
        step = self.chunk_tokens
        for start in range(0, max(len(ids), 1), step):
            if self.token_delay:
                await asyncio.sleep(self.token_delay * min(step, len(ids) - start))
            chunk = ids[start : start + step]
            last = start + step >= len(ids)
            yield EngineDelta(
                token_ids=chunk,
                text=self.tokenizer.decode(chunk),
                finish_reason=finish if last else None,
                usage=EngineUsage(prompt_len, cached, len(ids)) if last else None,
            )
