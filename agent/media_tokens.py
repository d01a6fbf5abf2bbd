"""How many tokens an image or audio clip takes in the engine's prompt.

The prompt holds one placeholder id per attachment (``<|image|>``, ``<|audio|>``); vLLM replaces
it with ``<|image>`` + N soft tokens + ``<image|>`` (audio: ``<|audio>`` + M + ``<audio|>``)
before the model runs, so the context a history takes is its ids plus that expansion. The
arithmetic is vLLM 0.32's for Gemma 4 (model_executor/models/gemma4_mm.py,
Gemma4ProcessingInfo), written with the same operations in the same order so the floating point
rounds the same way. Pure: sizes in, counts out (``agent/media.py`` reads the sizes of
attachments from their files).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from .engines.base import MediaItem

IMAGE_SOFT_TOKEN_BUDGETS = (70, 140, 280, 560, 1120)  # the max_soft_tokens Gemma 4 supports
DEFAULT_IMAGE_SOFT_TOKENS = 280  # vision_config.default_output_length of the checkpoints
_PATCH = 16  # vision_config.patch_size
_POOL = 3  # vision_config.pooling_kernel_size
AUDIO_SAMPLE_RATE = 16_000  # the feature extractor's rate: vLLM resamples every clip to it
AUDIO_MAX_SOFT_TOKENS = 750  # the processor's audio_seq_length (30 s at 40 ms a token)
_FRAME = 320  # 20 ms mel frames (feature extractor frame_length at 16 kHz)
_HOP = 160  # 10 ms hop


def image_token_count(
    width: int, height: int, max_soft_tokens: int = DEFAULT_IMAGE_SOFT_TOKENS
) -> int:
    """Soft tokens the vision tower yields for a ``width``×``height`` image: the image is
    scaled (aspect kept) to at most ``max_soft_tokens`` × 3×3 patches of 16 px, each side a
    multiple of 48 px, and pooled 3×3 (``_compute_num_soft_tokens``)."""
    if width < 1 or height < 1:
        raise ValueError(f"an image has a positive size, not {width}×{height}")
    unit = _PATCH * _POOL
    max_patches = max_soft_tokens * _POOL**2
    num_patches_orig = (height / _PATCH) * (width / _PATCH)
    scale = math.sqrt(max_patches / num_patches_orig)
    target_h = max(unit, math.floor(height * scale / unit) * unit)
    target_w = max(unit, math.floor(width * scale / unit) * unit)
    num_patches = (target_h // _PATCH) * (target_w // _PATCH)
    # Extreme aspect ratios overshoot (one side is raised to 48 px); vLLM caps like the tower.
    return min(num_patches // _POOL**2, max_soft_tokens)


def vllm_image_soft_tokens(
    default_output_length: int, mm_processor_kwargs: Mapping[str, object] | None = None
) -> int:
    """The per-image budget vLLM expands placeholders with (for `EngineInfo.image_soft_tokens`):
    ``max_soft_tokens`` from the engine's ``mm_processor_kwargs`` when Gemma 4 supports the
    value, else the checkpoint's ``vision_config.default_output_length``.

    As vLLM reads it: a flat key is dropped when a ``*_kwargs`` scope also holds it, and the
    flat value wins over ``images_kwargs`` otherwise (``_get_max_soft_tokens``).
    """
    kwargs = dict(mm_processor_kwargs or {})
    scopes = [
        kwargs.get(k) for k in ("text_kwargs", "images_kwargs", "videos_kwargs", "audio_kwargs")
    ]
    scoped = {key for scope in scopes if isinstance(scope, Mapping) for key in scope}
    value = None if "max_soft_tokens" in scoped else kwargs.get("max_soft_tokens")
    images = kwargs.get("images_kwargs")
    if value is None and isinstance(images, Mapping):
        value = images.get("max_soft_tokens")
    if isinstance(value, int) and value in IMAGE_SOFT_TOKEN_BUDGETS:
        return value
    return default_output_length


def resampled_length(
    num_samples: int, sample_rate: int, target_rate: int = AUDIO_SAMPLE_RATE
) -> int:
    """Samples a clip has once we resampled it to ``target_rate`` (`to_media_items`).

    soxr keeps ``n * target / rate`` samples rounded half up (exact rational arithmetic).
    We resample before vLLM sees a clip, so vLLM's own resampler (torchaudio, absent on CPU
    installs) never runs and this count holds for every engine.
    """
    if sample_rate == target_rate:
        return num_samples
    return int(Fraction(num_samples * target_rate, sample_rate) + Fraction(1, 2))


def audio_token_count(num_samples: int, sample_rate: int = AUDIO_SAMPLE_RATE) -> int:
    """Soft tokens the audio tower yields for a clip of ``num_samples`` at ``sample_rate``:
    20 ms mel frames every 10 ms (half a frame of left padding), then two stride-2
    convolutions, capped at 750 (``_compute_audio_num_tokens`` after resampling to 16 kHz)."""
    n = resampled_length(num_samples, sample_rate)
    num_mel_frames = (n + _FRAME // 2 - (_FRAME + 1)) // _HOP + 1
    if num_mel_frames <= 0:
        return 0
    t = num_mel_frames
    for _ in range(2):
        t = (t + 2 - 3) // 2 + 1
    return min(t, AUDIO_MAX_SOFT_TOKENS)


def expanded_tokens(
    kind: str, size: tuple[int, int], max_soft_tokens: int = DEFAULT_IMAGE_SOFT_TOKENS
) -> int:
    """Ids one medium takes in the engine's prompt: begin marker, soft tokens, end marker.
    ``size``: (width, height) of an image, (samples, sample rate) of a clip."""
    a, b = size
    if kind == "image":
        return image_token_count(a, b, max_soft_tokens) + 2
    return audio_token_count(a, b) + 2


def media_item_tokens(
    item: MediaItem, *, image_soft_tokens: int = DEFAULT_IMAGE_SOFT_TOKENS
) -> int:
    """`attachment_tokens` of a decoded medium (a PIL image; (samples, rate) of a clip)."""
    if item.modality == "image":
        size = (int(item.data.width), int(item.data.height))
    else:
        samples, rate = item.data
        size = (len(samples), int(rate))
    return expanded_tokens(item.modality, size, image_soft_tokens)
