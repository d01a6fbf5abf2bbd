"""How many prompt ids an image or audio clip takes once vLLM expanded its placeholder.

The references are the real ones: vLLM 0.32's own Gemma 4 arithmetic (its two methods, taken
from the installed source and run as is), transformers' Gemma 4 image processor and audio
feature extractor run on real files made here, and the clips our own resampler (soxr, in
`to_media_items`) hands to the engine.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import random
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from gemma_agent.agent import media as M
from gemma_agent.agent.media import Audio, Image, attachment_tokens, media_expansion, to_media_items
from gemma_agent.agent.media_tokens import (
    audio_token_count,
    image_token_count,
    media_item_tokens,
    resampled_length,
    vllm_image_soft_tokens,
)
from gemma_agent.agent.messages import Attachment
from PIL import Image as PILImage

BUDGETS = (70, 140, 280, 560, 1120)
IMAGE_SIZES = {
    "square": (512, 512),
    "wide": (1920, 1080),
    "tall": (600, 2400),
    "tiny": (1, 1),
    "large": (4000, 3000),
    "strip": (3, 900),  # extreme aspect ratio: vLLM's clamp
}


def vllm_source(relative: str) -> tuple[Path, ast.Module]:
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("vLLM is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path, ast.parse(path.read_text())


def run_defs(path: Path, nodes: Sequence[ast.stmt], namespace: dict[str, Any]) -> dict[str, Any]:
    for node in nodes:
        if isinstance(node, ast.FunctionDef):
            node.decorator_list = []
    exec(compile(ast.Module(body=list(nodes), type_ignores=[]), str(path), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def vllm_math() -> SimpleNamespace:
    """`Gemma4ProcessingInfo._compute_num_soft_tokens` and `_compute_audio_num_tokens` from the
    installed vLLM source (the module itself needs torchvision to import), with a Gemma 4
    vision config (patch 16, pooling 3: every released checkpoint)."""
    path, tree = vllm_source("model_executor/models/gemma4_mm.py")
    info = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Gemma4ProcessingInfo"
    )
    wanted = {"_compute_num_soft_tokens", "_compute_audio_num_tokens"}
    methods = [n for n in info.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    namespace = run_defs(path, methods, {"math": math})
    vision = SimpleNamespace(patch_size=16, pooling_kernel_size=3, default_output_length=280)
    self = SimpleNamespace(get_hf_config=lambda: SimpleNamespace(vision_config=vision))

    def image(width: int, height: int, budget: int) -> int:
        return int(namespace["_compute_num_soft_tokens"](self, width, height, budget))

    def audio(samples: int) -> int:
        # audio_seq_length 750: the processor config of the audio checkpoints (E2B, E4B)
        return int(namespace["_compute_audio_num_tokens"](samples, 16000, 750))

    return SimpleNamespace(image=image, audio=audio)


def hf_image_tokens(image: Any, budget: int) -> int:
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    out = Gemma4ImageProcessorPil(max_soft_tokens=budget)([image])
    return int(out["num_soft_tokens_per_image"][0])


def hf_audio_tokens(samples: np.ndarray) -> int:
    """transformers' count: the feature extractor's frame mask through the two stride-2
    convolutions (Gemma4Processor.replace_audio_token)."""
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor

    mask = Gemma4AudioFeatureExtractor()([samples])["input_features_mask"][0]
    t = len(mask)
    for _ in range(2):
        t_out = (t + 2 - 3) // 2 + 1
        mask = mask[::2][:t_out]
        t = len(mask)
    return int(mask.sum())


def noise_image(size: tuple[int, int], seed: int = 0) -> Any:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), "uint8")
    return PILImage.fromarray(pixels, "RGB")


def image_file(tmp_path: Path, size: tuple[int, int], fmt: str) -> Path:
    path = tmp_path / f"{size[0]}x{size[1]}.{fmt.lower()}"
    PILImage.new("RGB", size, (40, 120, 200)).save(path, format=fmt)
    return path


def wav(seconds: float, rate: int = 16000) -> Audio:
    n = round(seconds * rate)
    t = np.arange(n) / rate
    return Audio.from_array(0.3 * np.sin(2 * np.pi * 440 * t), rate, f"clip{seconds}s.wav")


# -- images -------------------------------------------------------------------------------------


def test_image_count_is_vllms_for_every_size_and_budget(vllm_math: SimpleNamespace) -> None:
    rng = random.Random(7)
    sides = [*range(1, 120), 17, 47, 48, 49, 95, 96, 97, 224, 768, 1080, 1190, 1920, 4000]
    sizes = [(w, h) for w in sides[::3] for h in sides]
    sizes += [(rng.randint(1, 8000), rng.randint(1, 8000)) for _ in range(1500)]
    sizes += [(1, 10_000), (10_000, 1), (3, 900), (2016, 2880), (672, 960)]
    for budget in BUDGETS:
        for w, h in sizes:
            assert image_token_count(w, h, budget) == vllm_math.image(w, h, budget), (w, h)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_image_files_take_what_the_hf_processor_makes_plus_boi_and_eoi(
    tmp_path: Path, fmt: str, vllm_math: SimpleNamespace
) -> None:
    for name, size in IMAGE_SIZES.items():
        att = Image.from_path(image_file(tmp_path, size, fmt)).to_attachment()
        [item] = to_media_items([att])  # the image as the engine gets it
        for budget in BUDGETS:
            expected = hf_image_tokens(item.data, budget) + 2  # <|image> soft tokens <image|>
            got = attachment_tokens(att, image_soft_tokens=budget)
            assert got == expected, (name, size, budget)
            assert got == vllm_math.image(*size, budget) + 2
            assert 2 < got <= budget + 2
            if name == "large":  # scaled down to fill most of the budget
                assert got - 2 >= 0.85 * budget


def test_where_vllm_and_transformers_disagree_vllm_is_followed(
    vllm_math: SimpleNamespace,
) -> None:
    """17×1190 at a budget of 70: the same scale computed two ways lands on both sides of 70
    units of 48 px. vLLM (whose count our engine's prompt gets) says 69, transformers 70."""
    assert vllm_math.image(17, 1190, 70) == 69
    assert hf_image_tokens(noise_image((17, 1190)), 70) == 70
    assert image_token_count(17, 1190, 70) == 69


def test_media_item_tokens_match_the_attachment_they_were_decoded_from(tmp_path: Path) -> None:
    atts = [
        Image.from_path(image_file(tmp_path, (800, 600), "PNG")).to_attachment(),
        wav(1.3, 44100).to_attachment(),
        Image.from_path(image_file(tmp_path, (90, 2000), "JPEG")).to_attachment(),
        wav(2.0, 8000).to_attachment(),
    ]
    for budget in (70, 1120):
        items = to_media_items(atts)
        assert [media_item_tokens(i, image_soft_tokens=budget) for i in items] == [
            attachment_tokens(a, image_soft_tokens=budget) for a in atts
        ]
        assert media_expansion(atts, image_soft_tokens=budget) == sum(
            attachment_tokens(a, image_soft_tokens=budget) - 1 for a in atts
        )


def test_the_engine_budget_is_read_as_vllm_reads_mm_processor_kwargs() -> None:
    """vLLM 0.32's own resolution (`_resolve_mm_processor_kwargs` on the configured kwargs,
    then gemma4_mm's `_get_max_soft_tokens`, unsupported values ignored), run from source."""
    from collections.abc import Mapping

    path, tree = vllm_source("multimodal/processing/context.py")
    nodes = [
        n
        for n in tree.body
        if (isinstance(n, ast.FunctionDef) and n.name == "_resolve_mm_processor_kwargs")
        or (isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "_HF_PROCESSOR_KWARG_SCOPES")
    ]
    ns = run_defs(path, nodes, {"Mapping": Mapping})
    path, tree = vllm_source("model_executor/models/gemma4_mm.py")
    nodes = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_get_max_soft_tokens"
    ]
    ns = run_defs(path, nodes, {**ns, "Mapping": Mapping})

    def vllm(default: int, kwargs: dict[str, Any]) -> int:
        value, _ = ns["_get_max_soft_tokens"](ns["_resolve_mm_processor_kwargs"](kwargs))
        return value if isinstance(value, int) and value in BUDGETS else default

    cases: list[dict[str, Any]] = [
        {},
        {"max_soft_tokens": 560},
        {"max_soft_tokens": 1120, "do_resize": True},
        {"max_soft_tokens": 300},  # unsupported: vLLM keeps the checkpoint's
        {"max_soft_tokens": "560"},
        {"images_kwargs": {"max_soft_tokens": 140}},
        {"max_soft_tokens": 560, "images_kwargs": {"max_soft_tokens": 140}},
        {"max_soft_tokens": 560, "images_kwargs": {"do_resize": True}},
        {"max_soft_tokens": 560, "videos_kwargs": {"max_soft_tokens": 70}},
        {"images_kwargs": {"max_soft_tokens": 99}},
    ]
    for default in (70, 280):
        for kwargs in cases:
            assert vllm_image_soft_tokens(default, kwargs) == vllm(default, kwargs), kwargs
    assert vllm_image_soft_tokens(280, None) == 280
    assert vllm_image_soft_tokens(280, {"max_soft_tokens": 560}) == 560


# -- audio --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.1, 1.0, 7.3, 30.0])
def test_wav_clips_take_what_the_feature_extractor_frames_plus_boa_and_eoa(
    seconds: float, vllm_math: SimpleNamespace
) -> None:
    clip = wav(seconds)
    att = clip.to_attachment()
    [item] = to_media_items([att])
    samples, rate = item.data
    assert rate == 16000 and len(samples) == round(seconds * 16000)
    expected = hf_audio_tokens(samples)
    assert attachment_tokens(att) == expected + 2
    assert attachment_tokens(att) == vllm_math.audio(len(samples)) + 2
    assert audio_token_count(len(samples)) == expected
    # About 25 soft tokens a second (40 ms each), capped at 750 (30 s).
    assert abs(expected - seconds * 25) <= 1


def test_audio_count_is_vllms_for_every_length(vllm_math: SimpleNamespace) -> None:
    lengths = [*range(0, 2000), *range(2000, 600_000, 997), 479_999, 480_000, 480_001, 10**7]
    for n in lengths:
        assert audio_token_count(n) == vllm_math.audio(n), n
    rng = np.random.default_rng(3)
    for n in [1, 320, 321, 480, 481, 16_000, 479_840, *rng.integers(1, 480_000, 40)]:
        assert audio_token_count(int(n)) == hf_audio_tokens(np.zeros(int(n), np.float32)), n


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_count_the_clip_the_engine_receives(rate: int) -> None:
    """Clips at other rates reach the engine resampled to 16 kHz by us: the count follows the
    samples actually handed over (vLLM never resamples, torchaudio is absent on CPU)."""
    clip = wav(7.3, rate)
    (item,) = to_media_items([clip.to_attachment()])
    samples, got_rate = item.data
    assert got_rate == 16000
    assert resampled_length(round(7.3 * rate), rate) == len(samples)
    assert attachment_tokens(clip.to_attachment()) == hf_audio_tokens(samples) + 2
    for n in [1, 2, 3, 100, 1234, 44_101, 180_697]:
        decoded = to_media_items([Audio.from_array(np.zeros(n, np.float32), rate).to_attachment()])
        assert len(decoded[0].data[0]) == resampled_length(n, rate), (n, rate)


# -- cost ---------------------------------------------------------------------------------------


def test_each_attachment_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = M.attachment_bytes

    def counting(att: Attachment) -> bytes:
        reads.append(att.name)
        return real(att)

    monkeypatch.setattr(M, "attachment_bytes", counting)
    att = Image.from_path(image_file(tmp_path, (333, 444), "PNG")).to_attachment()
    first = attachment_tokens(att)
    for budget in BUDGETS:
        attachment_tokens(att, image_soft_tokens=budget)
    # An equal attachment (a session read back from disk) is a cache hit too.
    copy = Attachment.model_validate_json(att.model_dump_json())
    assert copy is not att and attachment_tokens(copy) == first
    assert reads == ["333x444.png"]
    # Another image is read.
    other = Image.from_path(image_file(tmp_path, (334, 444), "PNG")).to_attachment()
    attachment_tokens(other)
    assert reads == ["333x444.png", "334x444.png"]


def test_the_size_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "_SIZES", {})
    monkeypatch.setattr(M, "_SIZES_MAX", 3)
    clips = [wav(0.1 * (i + 1)).to_attachment() for i in range(5)]
    assert [attachment_tokens(c) for c in clips] == [
        audio_token_count(round(0.1 * (i + 1) * 16000)) + 2 for i in range(5)
    ]
    assert len(M._SIZES) == 3


def test_an_undecodable_attachment_says_so() -> None:
    from gemma_agent.errors import ConfigError

    bad = Attachment(kind="image", name="x.png", mime="image/png", data_b64="bm90IGFuIGltYWdl")
    with pytest.raises(ConfigError, match=r"x\.png: the image cannot be decoded"):
        attachment_tokens(bad)
