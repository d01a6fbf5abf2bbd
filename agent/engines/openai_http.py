"""OpenAIHTTPEngine: the same token-in/token-out contract over `vllm serve` replicas.

We send our own rendered prompt as token ids to ``/v1/completions`` and read the streamed
token ids back (``return_token_ids``; special tokens kept), so rendering, parsing, thinking
budgets and prefix caching behave exactly as with the embedded engine. Start the server with
``--enable-prompt-tokens-details`` to get cached-token counts, and with the llguidance backend
(``--structured-outputs-config.backend guidance``) for tool-call grammars.

Resilience: connection errors, hangs (read timeouts), 429 and 5xx are retried with exponential
backoff and jitter (``Retry-After`` honoured); other 4xx are not. A stream that drops mid-way, or
sends an event we cannot read, is resumed as an append (prompt + what was already received)
unless a grammar is active, where a resume would restart the grammar: then `StreamBroken` says
the request must be redone from the start (the model layer does). The event stream is read
with ``httpx-sse`` (lines end only at CR, LF and CRLF, as SSE says: token texts may hold U+2028).

Routing (``routing.py``): each request carries a routing key (``EngineRequest.routing_key``, the
session id), sent as the ``x-session-id`` header for a router in front of the replicas. With
several base URLs the key picks its replica by rendezvous hashing over the healthy ones, so a
session's steps (and their re-decodes and retries) find their prefix cache; a replica that fails
is taken out, probed again with backoff, and only its sessions move. When every attempt failed
and no replica is left, the request ends with ``EngineUnavailable``.

Images and audio (``EngineRequest.media``) go to vLLM's token-in endpoint
``/inference/v1/generate`` instead, which takes the same prompt ids plus the media as data URLs
(PNG images, 16-bit PCM WAV audio, in prompt order); the server's Gemma 4 processor expands our
``<|image|>``/``<|audio|>`` placeholders as the embedded engine does. Serve with
``--enable-scale-out`` (vLLM 0.32+) for this. The sampling parameters are the completions
path's: ``/v1/completions/render`` turns the same body (with a one-token prompt) into vLLM's
SamplingParams, generation-config defaults included. ``modalities=`` says what the served model
takes (default image and audio; the server refuses what its checkpoint lacks).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from ...errors import ConfigError, EngineRequestFailed, EngineUnavailable, StreamBroken
from ...prompts.tokens import Tokenizer
from . import segments
from .base import EngineDelta, EngineInfo, EngineRequest, FinishReason, MediaItem
from .routing import Policy, Replica, Router
from .segments import Chunk

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
GENERATE_PATH = "/inference/v1/generate"  # vLLM's token-in endpoint that takes media
RENDER_PATH = "/v1/completions/render"  # completions body -> vLLM SamplingParams
SCALE_OUT_FIX = (
    "restart vllm serve with --enable-scale-out (vLLM 0.32 or later), or use the embedded "
    "engine (--engine vllm)"
)
# What vLLM answers (HTTP 400) for media the served model cannot take.
_MEDIA_REFUSED = re.compile(r"At most \d+ \w+\(s\) may be provided|is not a multimodal model")


SESSION_HEADER = "x-session-id"  # the routing key, for a router in front of the replicas


class _Retryable(Exception):
    """The request did not start; another attempt may work. ``take_out``: the replica failed
    (not merely busy) and leaves the rotation for a while."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, take_out: bool = True
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.take_out = take_out
        self.replica: Replica | None = None


class _Dropped(Exception):
    """The stream broke after some chunks arrived."""

    take_out = True
    retry_after = None
    replica: Replica | None = None


class _Malformed(_Dropped):
    """An event we cannot read: resumed like a drop, the replica stays in."""

    take_out = False


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
        modalities: Iterable[str] = ("image", "audio"),
        image_soft_tokens: int = 280,
        policy: Policy = "affinity",
        balance_abs_threshold: int = 16,
        balance_rel_threshold: float = 1.5,
        down_s: float = 1.0,
        max_down_s: float = 30.0,
    ) -> None:
        if not base_urls:
            raise ConfigError("give at least one --base-url (e.g. http://localhost:8000)")
        self._router = Router(
            [_normalize(u) for u in base_urls],
            policy=policy,
            balance_abs_threshold=balance_abs_threshold,
            balance_rel_threshold=balance_rel_threshold,
            down_s=down_s,
            max_down_s=max_down_s,
        )
        self._replicas = self._router.replicas
        self._probes: set[asyncio.Task[None]] = set()
        self._probe_timeout = httpx.Timeout(min(read_timeout_s, 5.0), connect=connect_timeout_s)
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
        self.info = EngineInfo(
            model=model or self._replicas[0].url,
            variant=variant,
            max_model_len=max_model_len or 0,
            supports_grammar=supports_grammar,
            modalities=frozenset({"text", *modalities}),
            image_soft_tokens=image_soft_tokens,
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
        self.info = dataclasses.replace(
            self.info, model=self._model or self.info.model, max_model_len=max_len
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def in_flight(self) -> dict[str, int]:
        return {r.url: r.in_flight for r in self._replicas}

    def sent(self) -> dict[str, int]:
        """Requests sent to each replica so far (retries and resumes included)."""
        return {r.url: r.sent for r in self._replicas}

    def healthy(self) -> dict[str, bool]:
        """Which replicas are in the rotation (a failed one is out until a probe answers)."""
        return {r.url: r.healthy for r in self._replicas}

    async def aclose(self) -> None:
        for task in self._probes:
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)
        await self._client.aclose()

    async def __aenter__(self) -> OpenAIHTTPEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- generation -----------------------------------------------------------------------
    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineDelta]:
        if self._client.is_closed:
            raise EngineUnavailable("the HTTP engine was closed; create a new one")
        parts: list[dict[str, str]] = []
        if request.media:
            missing = {m.modality for m in request.media} - self.info.modalities
            if missing:
                raise ConfigError(
                    f"this HTTP engine takes no {'/'.join(sorted(missing))} input (it was "
                    f"created with modalities {sorted(self.info.modalities)})"
                )
            # Encoded once: every segment and retry of this request sends the same media.
            parts = await asyncio.to_thread(content_parts, request.media)
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
                # The server counts what a later segment or a resumed attempt appended to the
                # request's prompt; report the request's own (media-expanded) length.
                appended = len(prompt_ids) - len(ids) + len(received)
                try:
                    async for chunk in self._post_stream(body, parts, request.routing_key):
                        received += chunk.token_ids
                        if appended and chunk.prompt_tokens is not None:
                            chunk = dataclasses.replace(
                                chunk, prompt_tokens=chunk.prompt_tokens - appended
                            )
                        yield chunk
                        if chunk.finish_reason is not None:
                            return
                    raise AssertionError("unreachable: _post_stream ends with a finish reason")
                except (_Retryable, _Dropped) as e:
                    attempt += 1
                    failed = e.replica
                    if failed is not None and e.take_out:
                        self._router.failed(failed, str(e))
                    if isinstance(e, _Dropped) and received and request.grammar is not None:
                        # The failed replica is out of the rotation already: a redo from the
                        # start (the model layer's) goes to another one.
                        raise StreamBroken(
                            f"the server's stream broke mid-way ({e}); with a grammar it cannot "
                            "be resumed, redo the request from the start"
                        ) from e
                    if attempt > self._retries:
                        if self._router.all_down():
                            raise EngineUnavailable(
                                f"gave up after {attempt} attempts, no replica answers: {e}. "
                                "Check that vllm serve is running at "
                                f"{', '.join(r.url for r in self._replicas)}"
                            ) from e
                        raise EngineRequestFailed(
                            f"gave up after {attempt} attempts: {e}. Check the server logs"
                        ) from e
                    if failed is not None and e.take_out and self._router.others_healthy(failed):
                        delay = 0.0  # fail over at once: another replica is in the rotation
                    else:
                        delay = self._delay(attempt, e.retry_after)
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

    def _start_probes(self) -> None:
        """Probe the replicas whose time out is over (in the background)."""
        for replica in self._router.due():
            replica.probing = True
            task = asyncio.create_task(self._probe(replica))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)

    async def _probe(self, replica: Replica) -> None:
        try:
            resp = await self._client.get(f"{replica.url}/v1/models", timeout=self._probe_timeout)
            ok, why = resp.status_code == 200, f"probe answered HTTP {resp.status_code}"
        except httpx.HTTPError as e:
            ok, why = False, f"probe: {type(e).__name__}"
        finally:
            replica.probing = False
        if ok:
            self._router.succeeded(replica)
        else:
            self._router.failed(replica, why)

    async def _generate_body(
        self, url: str, body: dict[str, Any], parts: list[dict[str, str]]
    ) -> dict[str, Any]:
        """The /inference/v1/generate body for a completions ``body`` plus media.

        The server renders the completions body (with a one-token prompt: the sampling
        parameters do not depend on the prompt) into the SamplingParams /v1/completions would
        use, so both paths sample alike.
        """
        probe = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        probe["prompt"] = body["prompt"][:1]
        resp = await self._client.post(f"{url}{RENDER_PATH}", json=probe)
        if resp.status_code != 200:
            _raise_for_status(url, resp, RENDER_PATH)
        try:
            sampling = resp.json()[0]["sampling_params"]
        except (ValueError, LookupError, TypeError) as e:
            raise EngineRequestFailed(
                f"{url}{RENDER_PATH} answered {resp.text[:200]!r}, not a render result: is "
                "this vllm serve 0.32 or later?"
            ) from e
        out: dict[str, Any] = {
            "model": body["model"],
            "token_ids": body["prompt"],
            "content_parts": parts,
            "sampling_params": sampling,
            "stream": True,
            # Usage on every chunk: the first one tells the prompt length after the server
            # expanded the media placeholders.
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        }
        for k in ("cache_salt", "request_id"):
            if k in body:
                out[k] = body[k]
        return out

    async def _post_stream(
        self, body: dict[str, Any], parts: list[dict[str, str]], key: str | None = None
    ) -> AsyncGenerator[Chunk, None]:
        self._start_probes()
        replica = self._router.pick(key)
        replica.in_flight += 1
        replica.sent += 1
        headers = {SESSION_HEADER: key} if key is not None else None
        got_any = False
        try:
            try:
                path, payload = "/v1/completions", body
                if parts:
                    path = GENERATE_PATH
                    payload = await self._generate_body(replica.url, body, parts)
                async with self._client.stream(
                    "POST", f"{replica.url}{path}", json=payload, headers=headers
                ) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        _raise_for_status(replica.url, resp, path)
                    self._router.succeeded(replica)
                    async for chunk in _sse_chunks(resp):
                        got_any = True
                        yield chunk
                        if chunk.finish_reason is not None:
                            return
                    # A clean end without one: the server is alive, the stream was not right.
                    raise _Malformed(f"{replica.url}: the stream ended without a finish reason")
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                raise _Retryable(f"cannot connect to {replica.url} ({type(e).__name__})") from e
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
                if got_any:
                    raise _Dropped(f"{replica.url}: {type(e).__name__}: {e}") from e
                raise _Retryable(f"{replica.url}: {type(e).__name__}: {e}") from e
            except httpx.DecodingError as e:
                raise _Malformed(f"{replica.url} sent an unreadable body: {e}") from e
        except (_Retryable, _Dropped) as e:
            e.replica = replica
            raise
        finally:
            replica.in_flight -= 1


def _normalize(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def content_parts(media: Iterable[MediaItem]) -> list[dict[str, str]]:
    """Media as /inference/v1/generate content parts, in prompt order (vLLM matches the n-th
    item of a modality to its n-th placeholder): images as PNG, audio as 16-bit PCM WAV."""
    parts = []
    for item in media:
        buf = io.BytesIO()
        if item.modality == "image":
            item.data.save(buf, format="PNG")
            kind, mime = "image_url", "image/png"
        elif item.modality == "audio":
            import soundfile

            samples, rate = item.data
            soundfile.write(buf, samples, int(rate), format="WAV", subtype="PCM_16")
            kind, mime = "audio_url", "audio/wav"
        else:
            raise ConfigError(f"the HTTP engine cannot send {item.modality!r} media")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        parts.append({"type": kind, "url": f"data:{mime};base64,{data}"})
    return parts


def _raise_for_status(url: str, resp: httpx.Response, path: str = "/v1/completions") -> None:
    code = resp.status_code
    try:
        detail = resp.json()
        message = (
            detail.get("error", {}).get("message")
            or detail.get("message")
            or detail.get("detail")  # FastAPI's own errors (an unknown route)
            or detail
        )
    except (ValueError, AttributeError):
        message = resp.text[:300]
    if path != "/v1/completions":
        _raise_for_media_status(url, code, message, path)
    if code in RETRY_STATUS:
        ra = resp.headers.get("retry-after")
        try:
            retry_after = float(ra) if ra is not None else None
        except ValueError:
            retry_after = None
        # 429: alive but busy, it stays in the rotation; 5xx: taken out for a while.
        raise _Retryable(
            f"{url} answered HTTP {code}: {message}", retry_after, take_out=code != 429
        )
    if code in (401, 403):
        raise EngineUnavailable(f"{url} refused our API key (HTTP {code}): check --api-key")
    if code == 404:
        raise EngineUnavailable(f"{url}: HTTP 404 ({message}); is the model name right?")
    raise EngineRequestFailed(f"{url} rejected the request (HTTP {code}): {message}")


def _raise_for_media_status(url: str, code: int, message: Any, path: str) -> None:
    """Errors of the media path that mean the server is not set up for it."""
    if code == 403:
        raise ConfigError(
            f"{url} refused images/audio on {path} (HTTP 403: {message}): {SCALE_OUT_FIX}"
        )
    if code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        raise ConfigError(f"{url} has no {path} endpoint (HTTP {code}): {SCALE_OUT_FIX}")
    if code == 400 and _MEDIA_REFUSED.search(str(message)):
        raise ConfigError(
            f"{url} cannot take these images/audio: {message} Serve a checkpoint with the "
            "vision/audio tower and a large enough --limit-mm-per-prompt, or attach fewer"
        )


async def _sse_chunks(resp: httpx.Response) -> AsyncIterator[Chunk]:
    """Server-sent events of /v1/completions or /inference/v1/generate as Chunks (usage
    arrives in the last event, and in every event with ``continuous_usage_stats``).

    An event we cannot read raises `_Malformed` (resumed or retried by the caller)."""
    pending: Chunk | None = None
    try:
        async for sse in EventSource(resp).aiter_sse():
            data = sse.data.strip()
            if data == "[DONE]":
                break
            if not data:
                continue
            chunk, usage = _read_event(data)
            if chunk is not None:
                if chunk.finish_reason is not None:
                    # Hold the finishing chunk back until the usage event (cached tokens).
                    pending = chunk
                    continue
                yield chunk
            if usage is not None and pending is not None:
                cached, prompt_tokens = usage
                yield Chunk(
                    pending.token_ids,
                    pending.finish_reason,
                    cached,
                    prompt_tokens if prompt_tokens is not None else pending.prompt_tokens,
                )
                pending = None
    except SSEError as e:
        raise EngineRequestFailed(
            f"{resp.request.url} did not answer with an event stream ({e}): is this vllm serve?"
        ) from e
    if pending is not None:
        yield pending


def _read_event(data: str) -> tuple[Chunk | None, tuple[int, int | None] | None]:
    """One event's data: the choice as a Chunk, and (cached, prompt tokens) if it has usage."""
    try:
        event = json.loads(data)
    except ValueError as e:
        raise _Malformed(f"the server sent an event that is not JSON ({e}): {data[:120]!r}") from e
    if not isinstance(event, dict):
        raise _Malformed(f"the server sent an event that is not an object: {data[:120]!r}")
    if "error" in event:
        raise EngineRequestFailed(f"the server failed the request: {event['error']}")
    try:
        usage = event.get("usage")
        prompt = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
        prompt_tokens = int(prompt) if isinstance(prompt, int) else None
        chunk = None
        choices = event.get("choices") or []
        if choices:
            c = choices[0]
            ids = [int(t) for t in c.get("token_ids") or []]
            chunk = Chunk(ids, _finish(c.get("finish_reason")), prompt_tokens=prompt_tokens)
        if not isinstance(usage, Mapping):
            return chunk, None
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
        return chunk, (int(cached or 0), prompt_tokens)
    except (AttributeError, LookupError, TypeError, ValueError) as e:
        raise _Malformed(f"the server sent an event we cannot read ({e}): {data[:120]!r}") from e


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
