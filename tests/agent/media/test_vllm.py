"""Images and audio through the real vLLM engine (CPU build) on the tiny multimodal Gemma 4.

The model is Gemma4ForConditionalGeneration with tiny random vision and audio towers
(``--model tiny-mm``); vLLM runs its own Gemma 4 processor, placeholder expansion and towers.
Random weights: we check what reaches the model (prompt sizes, the output moving with the
media), never what it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gemma_agent.agent.agent import Agent
from gemma_agent.agent.engines.base import EngineRequest
from gemma_agent.agent.engines.scripted import ScriptedEngine
from gemma_agent.agent.events import Usage
from gemma_agent.agent.media import Audio, Image, to_media_items
from gemma_agent.prompts import render_ids
from gemma_agent.prompts import tokens as T
from gemma_agent.tools import tool
from PIL import Image as PILImage

from .conftest import make_png, make_wav

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def noise_png(path: Path, seed: int, size: tuple[int, int] = (128, 96)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    PILImage.fromarray(pixels, "RGB").save(path)
    return path


def hf_expanded_length(model_dir: Path, text: str, image: Path, audio: Path) -> int:
    """Prompt length after transformers' own Gemma4Processor expands the placeholders."""
    import soundfile
    from gemma_agent.agent.engines.vllm_plugin import register_plugin

    register_plugin()  # the same fixes vLLM's processes get (no torchvision here)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    samples, _ = soundfile.read(audio, dtype="float32")
    enc = processor(
        text=[text],
        images=[[PILImage.open(image).convert("RGB")]],
        audio=[samples],
        return_tensors="np",
        add_special_tokens=False,
    )
    return int(enc["input_ids"].shape[1])


async def test_the_engine_serves_image_and_audio(mm_engine: Any) -> None:
    assert mm_engine.info.modalities == {"text", "image", "audio"}


async def test_user_image_and_audio_reach_the_towers_through_the_agent(
    mm_engine: Any, tmp_path: Path
) -> None:
    shot = noise_png(tmp_path / "shot.png", 1)
    clip = make_wav(tmp_path / "clip.wav", 1.0)
    question = [
        "What is in the picture and the clip?",
        Image.from_path(shot),
        Audio.from_path(clip),
    ]
    agent = Agent(
        engine=mm_engine, workspace=tmp_path, persist=False, max_output_tokens=8, temperature=0.0
    )
    usage = [e async for e in agent.stream(question) if isinstance(e, Usage)]
    assert len(usage) == 1
    # The same agent on a scripted engine shows the prompt text we sent (placeholders unexpanded).
    scripted = ScriptedEngine(["ok"], modalities=("image", "audio"), variant="tiny")
    await Agent(engine=scripted, workspace=tmp_path, persist=False).run(question)
    text = scripted.requests[0].prompt_text
    assert text.count(T.IMAGE) == 1 and text.count(T.AUDIO) == 1
    # vLLM expanded our two placeholders exactly as transformers' processor does.
    expanded = hf_expanded_length(Path(mm_engine.hf_tokenizer.path).parent, text, shot, clip)
    assert expanded > mm_engine.count_tokens(text) + 70  # the image's soft tokens at least
    assert usage[0].prompt_tokens == expanded


async def test_the_output_moves_with_the_image_and_with_the_audio(
    mm_engine: Any, tmp_path: Path
) -> None:
    """Greedy decoding on one prompt: another image (clip) gives other tokens, the same one
    gives the same tokens — the media reach the model, in their places."""
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "audio"}]}]
    prompt = render_ids(msgs, None, mm_engine.tokenizer, variant="tiny", add_generation_prompt=True)
    assert prompt.count(mm_engine.tokenizer.control_id(T.IMAGE)) == 1
    # Random towers average similar textures alike: use clearly different media.
    images = [
        Image.from_path(make_png(tmp_path / f"{c}.png", (128, 96), (c, c, c))) for c in (0, 255)
    ]
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)
    clips = [
        Audio.from_array(x.astype(np.float32), 16000) for x in (tone, rng.normal(0, 0.3, 16000))
    ]

    async def tokens(image: Image, audio: Audio) -> list[int]:
        media = to_media_items([image.to_attachment(), audio.to_attachment()])
        request = EngineRequest(
            prompt_ids=prompt, max_tokens=6, temperature=0.0, media=tuple(media)
        )
        out: list[int] = []
        async for delta in mm_engine.generate(request):
            out += delta.token_ids
        return out

    base = await tokens(images[0], clips[0])
    assert await tokens(images[0], clips[0]) == base
    assert await tokens(images[1], clips[0]) != base
    assert await tokens(images[0], clips[1]) != base


async def test_an_image_returned_by_a_tool_reaches_the_model(
    mm_engine: Any, tmp_path: Path
) -> None:
    shot = noise_png(tmp_path / "screen.png", 3)

    @tool
    def screenshot() -> Image:
        """Take a screenshot of the app."""
        return Image.from_path(shot)

    agent = Agent(
        engine=mm_engine,
        tools=[screenshot],
        workspace=tmp_path,
        persist=False,
        tool_choice="screenshot",
        max_steps=2,
        max_output_tokens=64,
    )
    usage: list[Usage] = []
    async for event in agent.stream("Look at the app."):
        if isinstance(event, Usage):
            usage.append(event)
    first = [u.prompt_tokens for u in usage if u.step == 1]
    second = [u.prompt_tokens for u in usage if u.step == 2]
    # The second prompt is the first + the call + the response with the image expanded.
    assert first and second and second[0] > first[0] + 70


async def test_the_plugin_is_registered_for_every_vllm_process() -> None:
    """vLLM loads `vllm.general_plugins` entry points in the API server, the engine core and
    its model-inspection subprocess: that is how the fixes reach processes we do not start."""
    from importlib.metadata import entry_points

    from gemma_agent.agent.engines.vllm_plugin import register_plugin

    (ours,) = [e for e in entry_points(group="vllm.general_plugins") if e.name == "gemma_agent"]
    assert ours.load() is register_plugin
    register_plugin()  # idempotent: vLLM may load plugins more than once per process
    register_plugin()


async def test_a_failing_fix_never_stops_vllm(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """vLLM calls plugins without a guard: if the internals we patch change, vLLM must still
    start (text works) and the log says why media may not."""
    from gemma_agent.agent.engines import vllm_plugin as module

    def broken() -> None:
        raise AttributeError("Gemma4Processor has no attribute get_attributes")

    monkeypatch.setattr(module, "_needs_multimodal_fixes", lambda: True)
    monkeypatch.setattr(module, "_gemma4_processor_without_torchvision", broken)
    module.register_plugin()
    assert "could not apply its multimodal fixes" in caplog.text
