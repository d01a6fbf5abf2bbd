"""Images and audio through OpenAIHTTPEngine: a real `vllm serve --enable-scale-out` of the
tiny multimodal Gemma 4 (random towers: we check what reaches the model, never what it says),
and the endpoint's faults with httpx.MockTransport."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
import soundfile
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.base import EngineRequest, MediaItem
from gemma_agent.agent.engines.openai_http import OpenAIHTTPEngine
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.agent.engines.tokenizer import HFTokenizer
from gemma_agent.agent.events import Usage
from gemma_agent.agent.media import Audio, Image, to_media_items
from gemma_agent.errors import ConfigError, EngineRequestFailed
from gemma_agent.prompts import render_ids
from gemma_agent.prompts import tokens as T
from PIL import Image as PILImage

from ..media.conftest import make_png, make_wav
from ..media.test_vllm import hf_expanded_length, noise_png
from .conftest import API_KEY, SSE

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def mm_path() -> Path:
    from gemma_agent.agent.engines.tiny import tiny_model_path

    return tiny_model_path(multimodal=True)


@pytest.fixture(scope="module")
def tok(mm_path: Path) -> HFTokenizer:
    return HFTokenizer(mm_path)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(vllm_mm_server: str, tok: HFTokenizer) -> AsyncIterator[OpenAIHTTPEngine]:
    # The server expands each image to at most 70 soft tokens (--mm-processor-kwargs).
    async with await OpenAIHTTPEngine.connect(
        [vllm_mm_server], tok, variant="tiny", api_key=API_KEY, image_soft_tokens=70
    ) as e:
        yield e


def image_audio_prompt(tok: HFTokenizer) -> list[int]:
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "audio"}]}]
    return render_ids(msgs, None, tok, variant="tiny", add_generation_prompt=True)


def items(*media: Image | Audio) -> tuple[MediaItem, ...]:
    return tuple(to_media_items([m.to_attachment() for m in media]))


def gray(tmp_path: Path, level: int) -> Image:
    return Image.from_path(make_png(tmp_path / f"{level}.png", (128, 96), (level,) * 3))


def tone_and_noise() -> list[Audio]:
    tone = 0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)
    noise = np.random.default_rng(0).normal(0, 0.3, 16000)
    return [Audio.from_array(x.astype(np.float32), 16000) for x in (tone, noise)]


async def greedy(engine: OpenAIHTTPEngine, ids: list[int], media: Any, **kw: Any) -> list[int]:
    kw.setdefault("max_tokens", 6)
    request = EngineRequest(ids, temperature=0.0, media=media, **kw)
    return [t async for d in engine.generate(request) for t in d.token_ids]


# -- real server ---------------------------------------------------------------------------


@pytest.mark.engine
async def test_image_and_audio_reach_the_server_expanded_as_transformers_does(
    engine: OpenAIHTTPEngine, tok: HFTokenizer, mm_path: Path, tmp_path: Path
) -> None:
    assert engine.info.modalities == {"text", "image", "audio"}
    ids = image_audio_prompt(tok)
    shot, clip = noise_png(tmp_path / "shot.png", 1), make_wav(tmp_path / "clip.wav", 1.0)
    media = items(Image.from_path(shot), Audio.from_path(clip))
    deltas = [
        d async for d in engine.generate(EngineRequest(ids, max_tokens=8, seed=2, media=media))
    ]
    out = [t for d in deltas for t in d.token_ids]
    last = deltas[-1]
    assert last.finish_reason in ("stop", "length") and last.usage is not None
    assert last.usage.generated_tokens == len(out) > 0
    expanded = hf_expanded_length(mm_path, tok.decode(ids), shot, clip)
    assert expanded > len(ids) + 70  # the image's soft tokens at least
    assert last.usage.prompt_tokens == expanded
    # The same media again: the prefix cache serves the expanded prompt (media hashed in).
    again = [d async for d in engine.generate(EngineRequest(ids, max_tokens=2, media=media))]
    assert again[-1].usage is not None and again[-1].usage.cached_prompt_tokens >= 64


@pytest.mark.engine
async def test_the_output_moves_with_the_image_and_the_audio(
    engine: OpenAIHTTPEngine, tok: HFTokenizer, tmp_path: Path
) -> None:
    ids = image_audio_prompt(tok)
    # Random towers average similar textures alike: clearly different media.
    black, white = gray(tmp_path, 0), gray(tmp_path, 255)
    tone, noise = tone_and_noise()
    base = await greedy(engine, ids, items(black, tone))
    assert await greedy(engine, ids, items(black, tone)) == base
    assert await greedy(engine, ids, items(white, tone)) != base
    assert await greedy(engine, ids, items(black, noise)) != base


@pytest.mark.engine
async def test_thinking_budget_segments_send_the_media_again(
    engine: OpenAIHTTPEngine, tok: HFTokenizer, mm_path: Path, tmp_path: Path
) -> None:
    """At the budget the engine closes the channel and continues in a new request (prompt +
    output so far): that request carries the media too, so it continues exactly as a fresh
    request with the same media would, and differently with another image."""
    ids = image_audio_prompt(tok) + tok.encode(f"{T.CHANNEL_OPEN}thought\n")
    black, white = gray(tmp_path, 0), gray(tmp_path, 255)
    tone = tone_and_noise()[0]
    deltas = [
        d
        async for d in engine.generate(
            EngineRequest(
                ids, max_tokens=10, temperature=0.0, thinking_budget=3, media=items(black, tone)
            )
        )
    ]
    out = [t for d in deltas for t in d.token_ids]
    close = tok.control_id(T.CHANNEL_CLOSE)
    assert close in out[:4]
    cut = out.index(close) + 1
    rest = out[cut:]
    assert rest, "the second segment produced nothing"
    # The request's own prompt length (placeholders expanded), not the second segment's.
    usage = deltas[-1].usage
    assert usage is not None
    assert usage.prompt_tokens == hf_expanded_length(
        mm_path, tok.decode(ids), tmp_path / "0.png", _wav(tmp_path / "tone.wav", tone)
    )
    # thinking_budget=0 on a closed channel: the same <|channel> ban the second segment had.
    fresh = dict(max_tokens=len(rest), thinking_budget=0)
    assert await greedy(engine, ids + out[:cut], items(black, tone), **fresh) == rest
    assert await greedy(engine, ids + out[:cut], items(white, tone), **fresh) != rest


def _wav(path: Path, audio: Audio) -> Path:
    path.write_bytes(audio.data)
    return path


@pytest.mark.engine
async def test_the_agent_runs_on_the_http_engine_with_an_image_and_audio(
    engine: OpenAIHTTPEngine, mm_path: Path, tmp_path: Path
) -> None:
    png, clip = noise_png(tmp_path / "screen.png", 3), make_wav(tmp_path / "note.wav", 0.5)
    question = ["describe", Image.from_path(png), Audio.from_path(clip)]
    agent = Agent(
        engine=engine, workspace=tmp_path, persist=False, max_output_tokens=8, temperature=0.0
    )
    usage: list[Usage] = []
    result = await agent.run(
        question, on_event=lambda e: usage.append(e) if isinstance(e, Usage) else None
    )
    assert result.error is None and result.reason == "final_answer", result
    assert len(usage) == result.usage.requests == 1
    # The same agent on a scripted engine shows the prompt text it sent (placeholders
    # unexpanded); the server expanded it as transformers' processor does.
    scripted = ScriptedEngine(["ok"], modalities=("image", "audio"), variant="tiny")
    await Agent(engine=scripted, workspace=tmp_path, persist=False).run(question)
    text = scripted.requests[0].prompt_text
    assert text.count(T.IMAGE) == 1 and text.count(T.AUDIO) == 1
    assert usage[0].prompt_tokens == hf_expanded_length(mm_path, text, png, clip)


@pytest.mark.engine
async def test_a_server_without_scale_out_refuses_media_with_the_fix(
    vllm_server: str, tok: HFTokenizer, tmp_path: Path
) -> None:
    async with await OpenAIHTTPEngine.connect(
        [vllm_server], tok, variant="tiny", api_key=API_KEY
    ) as plain:
        ids = image_audio_prompt(tok)
        with pytest.raises(ConfigError, match="restart vllm serve with --enable-scale-out"):
            await greedy(plain, ids, items(gray(tmp_path, 0), tone_and_noise()[0]))
        # Text keeps going through /v1/completions.
        assert await greedy(plain, ids[:5], ())


# -- the endpoint's protocol and faults with httpx.MockTransport --------------------------

SAMPLING = {"temperature": 1.0, "top_p": 0.95, "top_k": 64, "max_tokens": 9, "seed": 5}


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _generated(ids: list[int], prompt_tokens: int, cached: int = 0) -> bytes:
    def usage(n: int) -> dict[str, int]:
        return {"prompt_tokens": prompt_tokens, "completion_tokens": n}

    return _sse(
        [
            {
                "choices": [{"index": 0, "token_ids": ids[:1], "finish_reason": None}],
                "usage": usage(1),
            },
            {
                "choices": [{"index": 0, "token_ids": ids[1:], "finish_reason": "stop"}],
                "usage": usage(len(ids)),
            },
            {
                "choices": [],
                "usage": {**usage(len(ids)), "prompt_tokens_details": {"cached_tokens": cached}},
            },
        ]
    )


def _models(req: httpx.Request) -> httpx.Response | None:
    if req.url.path == "/v1/models":
        return httpx.Response(200, json={"data": [{"id": "tiny", "max_model_len": 4096}]})
    return None


async def _mock_engine(tok: HFTokenizer, handler: Any, **kw: Any) -> OpenAIHTTPEngine:
    return await OpenAIHTTPEngine.connect(
        ["http://a"],
        tok,
        variant="tiny",
        backoff_s=0.001,
        transport=httpx.MockTransport(lambda r: _models(r) or handler(r)),
        **kw,
    )


def _decode(url: str) -> bytes:
    head, _, data = url.partition(",")
    assert head.endswith(";base64")
    return base64.b64decode(data)


async def test_media_go_to_generate_with_the_completions_sampling_and_503_is_retried(
    tok: HFTokenizer,
) -> None:
    renders: list[dict[str, Any]] = []
    generates: list[dict[str, Any]] = []
    word = tok.encode("hello")

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        if req.url.path == "/v1/completions/render":
            renders.append(body)
            return httpx.Response(
                200, json=[{"token_ids": body["prompt"], "sampling_params": SAMPLING}]
            )
        assert req.url.path == "/inference/v1/generate", req.url.path
        generates.append(body)
        if len(generates) == 1:
            return httpx.Response(503, json={"error": {"message": "warming up"}})
        return httpx.Response(
            200, content=_generated([*word, 1], prompt_tokens=412, cached=96), headers=SSE
        )

    engine = await _mock_engine(tok, handler)
    ids = [
        tok.bos_id,
        *tok.encode("<|turn>user\n<|image|><|audio|><|image|><turn|>\n<|turn>model\n"),
    ]
    red = PILImage.new("RGB", (40, 30), (200, 0, 0))
    clip = (np.linspace(-0.5, 0.5, 8000, dtype=np.float32), 8000)
    media = (
        MediaItem("image", red),
        MediaItem("audio", clip),
        MediaItem("image", PILImage.new("RGB", (20, 10))),
    )
    request = EngineRequest(ids, max_tokens=9, seed=5, cache_salt="salt", media=media)
    deltas = [d async for d in engine.generate(request)]
    await engine.aclose()

    assert len(generates) == 2 and len(renders) == 2  # the 503 was retried, whole
    # The sampling parameters are what the server renders from the completions body.
    probe = renders[1]
    assert probe["prompt"] == ids[:1] and probe["max_tokens"] == 9 and probe["seed"] == 5
    assert probe["skip_special_tokens"] is False
    assert set(tok.stop_ids()) <= set(probe["stop_token_ids"])
    body = generates[1]
    assert body["token_ids"] == ids and body["sampling_params"] == SAMPLING
    assert body["stream"] is True and body["cache_salt"] == "salt"
    # The media in prompt order: PNG images, 16-bit WAV audio, decodable as sent.
    parts = body["content_parts"]
    assert [p["type"] for p in parts] == ["image_url", "audio_url", "image_url"]
    assert parts[0]["url"].startswith("data:image/png;base64,")
    assert parts[1]["url"].startswith("data:audio/wav;base64,")
    first = PILImage.open(io.BytesIO(_decode(parts[0]["url"])))
    assert first.size == (40, 30) and first.getpixel((0, 0)) == (200, 0, 0)
    assert PILImage.open(io.BytesIO(_decode(parts[2]["url"]))).size == (20, 10)
    info = soundfile.info(io.BytesIO(_decode(parts[1]["url"])))
    assert (info.samplerate, info.frames, info.subtype) == (8000, 8000, "PCM_16")
    samples, _ = soundfile.read(io.BytesIO(_decode(parts[1]["url"])), dtype="float32")
    assert np.allclose(samples, clip[0], atol=1e-4)

    assert [t for d in deltas for t in d.token_ids] == [*word, 1]
    usage = deltas[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.cached_prompt_tokens) == (412, 96)


@pytest.mark.parametrize(
    ("path", "status", "payload", "match"),
    [
        (
            "/v1/completions/render",
            403,
            {
                "error": {
                    "message": "Scale-out endpoints are disabled. Restart vllm serve with "
                    "--enable-scale-out to enable them.",
                    "code": 403,
                }
            },
            "restart vllm serve with --enable-scale-out",
        ),
        ("/v1/completions/render", 404, {"detail": "Not Found"}, "has no /v1/completions/render"),
        ("/inference/v1/generate", 404, {"detail": "Not Found"}, "has no /inference/v1/generate"),
        (
            "/inference/v1/generate",
            400,
            {"error": {"message": "At most 0 audio(s) may be provided in one prompt."}},
            "cannot take these images/audio",
        ),
    ],
)
async def test_a_server_not_set_up_for_media_is_a_config_error(
    tok: HFTokenizer, path: str, status: int, payload: dict[str, Any], match: str
) -> None:
    calls: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req.url.path)
        if req.url.path == path:
            return httpx.Response(status, json=payload)
        return httpx.Response(200, json=[{"sampling_params": SAMPLING}])

    engine = await _mock_engine(tok, handler)
    media = (MediaItem("audio", (np.zeros(1600, dtype=np.float32), 16000)),)
    request = EngineRequest([tok.bos_id, *tok.encode("<|audio|>")], media=media)
    with pytest.raises(ConfigError, match=match):
        [d async for d in engine.generate(request)]
    await engine.aclose()
    assert calls[-1] == path and calls.count(path) == 1  # not retried


async def test_other_generate_errors_keep_the_completions_behaviour(tok: HFTokenizer) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/completions/render":
            return httpx.Response(200, json=[{"sampling_params": SAMPLING}])
        return httpx.Response(400, json={"error": {"message": "cannot identify image file"}})

    engine = await _mock_engine(tok, handler)
    request = EngineRequest([tok.bos_id], media=(MediaItem("image", PILImage.new("RGB", (4, 4))),))
    with pytest.raises(EngineRequestFailed, match="cannot identify image file"):
        [d async for d in engine.generate(request)]
    await engine.aclose()


async def test_modalities_the_engine_was_not_given_are_refused_before_any_request(
    tok: HFTokenizer,
) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {req.url.path}")

    engine = await _mock_engine(tok, handler, modalities=("image",))
    assert engine.info.modalities == {"text", "image"}
    media = (MediaItem("audio", (np.zeros(160, dtype=np.float32), 16000)),)
    with pytest.raises(ConfigError, match="takes no audio"):
        [d async for d in engine.generate(EngineRequest([tok.bos_id], media=media))]
    await engine.aclose()
