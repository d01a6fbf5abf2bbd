"""OpenAIHTTPEngine: the same token-in/token-out contract over `vllm serve` replicas.

We send our own rendered prompt as token ids to ``/v1/completions`` and read the streamed
token ids back (``return_token_ids``; special tokens kept), so rendering, parsing, thinking
budgets and prefix caching behave exactly as with the embedded engine. Start the server with
``--enable-prompt-tokens-details`` to get cached-token counts, and with the llguidance backend
(``--structured-outputs-config.backend guidance``) for tool-call grammars.

Resilience: connection errors, 429 and 5xx are retried with exponential backoff and jitter
(``Retry-After`` honoured); other 4xx are not. A stream that drops mid-way is resumed as an
append (prompt + what was already received) unless a grammar is active, where a resume would
restart the grammar. With several base URLs each request goes to the replica with the fewest
requests in flight.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ...errors import ConfigError, EngineRequestFailed, EngineUnavailable
from ...prompts.tokens import Tokenizer
from . import segments
from .base import EngineDelta, EngineInfo, EngineRequest, FinishReason
from .segments import Chunk

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(slots=True)
class _Replica:
    url: str
    in_flight: int = 0
    served_model: str = ""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Dropped(Exception):
    """The stream broke after some chunks arrived."""


class OpenAIHTTPEngine:
    """Engine over one or more ``vllm serve`` base URLs (``http://host:8000``).

    Create with ``await OpenAIHTTPEngine.connect(...)``, which checks ``/v1/models``.
    """

    info: EngineInfo
    tokenizer: Tokenizer

    def __init__(
        self,
        base_urls: Sequence[str],
        tokenizer: Tokenizer,
        *,
        variant: str,
        model: str | None = None,
        api_key: str | None = None,
        max_model_len: int | None = None,
        supports_grammar: bool = True,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_urls:
            raise ConfigError("give at least one --base-url (e.g. http://localhost:8000)")
        self._replicas = [_Replica(_normalize(u)) for u in base_urls]
        self.tokenizer = tokenizer
        self._model = model
        self._retries = retries
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            transport=transport,
        )
        self._rr = 0
        self.info = EngineInfo(
            model=model or self._replicas[0].url,
            variant=variant,
            max_model_len=max_model_len or 0,
            supports_grammar=supports_grammar,
        )

    @classmethod
    async def connect(
        cls, base_urls: Sequence[str], tokenizer: Tokenizer, **kwargs: Any
    ) -> OpenAIHTTPEngine:
        engine = cls(base_urls, tokenizer, **kwargs)
        try:
            await engine.check()
        except BaseException:
            await engine.aclose()
            raise
        return engine

    async def check(self) -> None:
        """Ask every replica for ``/v1/models``: reachable, serving our model, its context."""
        lens = []
        for r in self._replicas:
            try:
                resp = await self._client.get(f"{r.url}/v1/models")
            except httpx.HTTPError as e:
                raise EngineUnavailable(
                    f"cannot reach vllm serve at {r.url} ({type(e).__name__}: {e}). Start it "
                    "(`vllm serve MODEL --enable-prompt-tokens-details`) or fix --base-url"
                ) from e
            if resp.status_code in (401, 403):
                raise EngineUnavailable(
                    f"{r.url} refused our API key (HTTP {resp.status_code}): check --api-key"
                )
            if resp.status_code != 200:
                raise EngineUnavailable(
                    f"{r.url}/v1/models answered HTTP {resp.status_code}: is this a vllm serve "
                    "endpoint? Give --base-url without the /v1 suffix"
                )
            models = [m for m in resp.json().get("data", []) if isinstance(m, Mapping)]
            ids = [str(m.get("id")) for m in models]
            if self._model is None:
                if len(ids) != 1:
                    raise ConfigError(f"{r.url} serves {ids}: pass --model to pick one")
                self._model = ids[0]
            if self._model not in ids:
                raise EngineUnavailable(
                    f"{r.url} serves {ids}, not {self._model!r}: point --base-url at a server of "
                    f"that model, or pass --model {ids[0] if ids else 'NAME'}"
                )
            r.served_model = self._model
            m = models[ids.index(self._model)]
            if isinstance(m.get("max_model_len"), int):
                lens.append(int(m["max_model_len"]))
        max_len = min(lens) if lens else self.info.max_model_len or 8192
        self.info = EngineInfo(
            model=self._model or self.info.model,
            variant=self.info.variant,
            max_model_len=max_len,
            supports_grammar=self.info.supports_grammar,
            modalities=self.info.modalities,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def in_flight(self) -> dict[str, int]:
        return {r.url: r.in_flight for r in self._replicas}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> OpenAIHTTPEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- generation -----------------------------------------------------------------------
    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        if self._client.is_closed:
            raise EngineUnavailable("the HTTP engine was closed; create a new one")
        if request.media:
            raise ConfigError("the HTTP engine sends text prompts only (no images or audio)")
        ids = list(request.prompt_ids)
        max_len = self.info.max_model_len or 1 << 30
        room = max_len - len(ids)
        if room <= 0:
            raise EngineRequestFailed(
                f"the prompt has {len(ids)} tokens, the server's context holds {max_len}: "
                "compact the history or serve with a larger --max-model-len"
            )

        async def run_segment(
            prompt_ids: list[int], max_tokens: int, ban: bool
        ) -> AsyncGenerator[Chunk, None]:
            received: list[int] = []
            attempt = 0
            while True:
                body = self._body(request, prompt_ids + received, max_tokens - len(received), ban)
                try:
                    async for chunk in self._post_stream(body):
                        received += chunk.token_ids
                        yield chunk
                        if chunk.finish_reason is not None:
                            return
                    raise _Dropped("the stream ended without a finish reason")
                except (_Retryable, _Dropped) as e:
                    attempt += 1
                    if isinstance(e, _Dropped) and received and request.grammar is not None:
                        raise EngineRequestFailed(
                            f"the server's stream broke mid-way ({e}); with a grammar it cannot "
                            "be resumed, retry the request"
                        ) from e
                    if attempt > self._retries:
                        raise EngineRequestFailed(
                            f"gave up after {attempt} attempts: {e}. Check the server logs"
                        ) from e
                    delay = self._delay(attempt, getattr(e, "retry_after", None))
                    log.warning("HTTP engine: %s; retry %d in %.2fs", e, attempt, delay)
                    await asyncio.sleep(delay)

        async for delta in segments.stream(
            request, self.tokenizer, min(request.max_tokens, room), run_segment
        ):
            yield delta

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_backoff * 4)
        base = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.5)  # jitter: replicas are not hit in lockstep

    def _body(
        self, request: EngineRequest, ids: list[int], max_tokens: int, ban: bool
    ) -> dict[str, Any]:
        stops = [*self.tokenizer_stop_ids(), *request.stop_token_ids]
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": ids,
            "max_tokens": max(1, max_tokens),
            "stream": True,
            "stream_options": {"include_usage": True},
            "skip_special_tokens": False,
            "spaces_between_special_tokens": False,
            "return_token_ids": True,
            "stop_token_ids": list(dict.fromkeys(stops)),
        }
        for k in ("temperature", "top_p", "top_k", "seed"):
            v = getattr(request, k)
            if v is not None:
                body[k] = v
        if request.grammar is not None:
            body["structured_outputs"] = {"grammar": request.grammar}
        if request.cache_salt is not None:
            body["cache_salt"] = request.cache_salt
        if ban:
            from ...prompts import tokens as T

            body["logit_bias"] = {str(self.tokenizer.control_id(T.CHANNEL_OPEN)): -100}
        if request.request_id is not None:
            body["request_id"] = request.request_id
        return body

    def tokenizer_stop_ids(self) -> list[int]:
        from ...prompts import tokens as T

        return [self.tokenizer.control_id(m) for m in T.STOP_MARKERS]

    def _pick(self) -> _Replica:
        low = min(r.in_flight for r in self._replicas)
        ties = [r for r in self._replicas if r.in_flight == low]
        self._rr += 1
        return ties[self._rr % len(ties)]

    async def _post_stream(self, body: dict[str, Any]) -> AsyncGenerator[Chunk, None]:
        replica = self._pick()
        replica.in_flight += 1
        got_any = False
        try:
            try:
                async with self._client.stream(
                    "POST", f"{replica.url}/v1/completions", json=body
                ) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        _raise_for_status(replica.url, resp)
                    async for chunk in _sse_chunks(resp):
                        got_any = True
                        yield chunk
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                raise _Retryable(f"cannot connect to {replica.url} ({type(e).__name__})") from e
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as e:
                if got_any:
                    raise _Dropped(f"{type(e).__name__}: {e}") from e
                raise _Retryable(f"{replica.url}: {type(e).__name__}: {e}") from e
        finally:
            replica.in_flight -= 1


def _normalize(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _raise_for_status(url: str, resp: httpx.Response) -> None:
    code = resp.status_code
    try:
        detail = resp.json()
        message = detail.get("error", {}).get("message") or detail.get("message") or detail
    except (ValueError, AttributeError):
        message = resp.text[:300]
    if code in RETRY_STATUS:
        ra = resp.headers.get("retry-after")
        try:
            retry_after = float(ra) if ra is not None else None
        except ValueError:
            retry_after = None
        raise _Retryable(f"{url} answered HTTP {code}: {message}", retry_after)
    if code in (401, 403):
        raise EngineUnavailable(f"{url} refused our API key (HTTP {code}): check --api-key")
    if code == 404:
        raise EngineUnavailable(f"{url}: HTTP 404 ({message}); is the model name right?")
    raise EngineRequestFailed(f"{url} rejected the request (HTTP {code}): {message}")


async def _sse_chunks(resp: httpx.Response) -> AsyncIterator[Chunk]:
    """Server-sent events of /v1/completions as Chunks (usage arrives in the last event)."""
    pending: Chunk | None = None
    async for line in resp.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        event = json.loads(data)
        if "error" in event:
            raise EngineRequestFailed(f"the server failed the request: {event['error']}")
        usage = event.get("usage")
        choices = event.get("choices") or []
        if choices:
            c = choices[0]
            ids = list(c.get("token_ids") or [])
            finish = _finish(c.get("finish_reason"))
            chunk = Chunk(ids, finish)
            if finish is not None:
                # Hold the finishing chunk back until the usage event (cached tokens).
                pending = chunk
                continue
            yield chunk
        if usage is not None and pending is not None:
            details = usage.get("prompt_tokens_details") or {}
            cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
            yield Chunk(pending.token_ids, pending.finish_reason, int(cached or 0))
            pending = None
    if pending is not None:
        yield pending


def _finish(reason: Any) -> FinishReason | None:
    if reason is None:
        return None
    if reason == "length":
        return "length"
    if reason == "abort":
        return "abort"
    if reason == "stop":
        return "stop"
    raise EngineRequestFailed(f"the server ended the request with finish_reason={reason!r}")
