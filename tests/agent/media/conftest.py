"""Real image and audio files, made by the tests (Pillow, wave, soundfile)."""

from __future__ import annotations

import math
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image as PILImage


def make_png(
    path: Path, size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)
) -> Path:
    PILImage.new("RGB", size, color).save(path)
    return path


def make_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    n = int(seconds * rate)
    pcm = b"".join(
        int(8000 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(n)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    return make_png(tmp_path / "shot.png")


@pytest.fixture
def note(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "note.wav", 0.5)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mm_engine() -> AsyncIterator[Any]:
    """The tiny multimodal model on the real vLLM engine, as `--model tiny-mm` starts it."""
    from gemma_agent.agent.engines.factory import EngineConfig, create_engine

    from ...conftest import _require_vllm

    _require_vllm()
    engine = await create_engine(EngineConfig(model="tiny-mm", max_model_len=4096, quiet=True))
    try:
        yield engine
    finally:
        await engine.aclose()  # type: ignore[attr-defined]
