"""Real image and audio files, made by the tests (Pillow, wave, soundfile)."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import pytest
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
