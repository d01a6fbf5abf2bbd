"""Media loading and validation with real image/audio files made by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from gemma_agent.agent.media import (
    Audio,
    Image,
    MediaLimits,
    as_user_input,
    check_media,
    load_media,
    to_media_items,
)
from gemma_agent.errors import ConfigError
from PIL import Image as PILImage

from .conftest import make_wav

ALL = frozenset({"text", "image", "audio"})


def test_image_from_path_reads_size_and_mime(shot: Path) -> None:
    img = Image.from_path(shot)
    assert (img.width, img.height, img.mime) == (64, 48, "image/png")
    assert "64×48" in img.describe()
    att = img.to_attachment()
    assert att.kind == "image" and att.name == "shot.png"


def test_image_from_pil_and_jpeg_by_content(tmp_path: Path) -> None:
    p = tmp_path / "photo.bin"  # wrong suffix: the content decides
    PILImage.new("RGB", (10, 10)).save(p, format="JPEG")
    assert load_media(p).mime == "image/jpeg"
    assert Image.from_pil(PILImage.new("L", (3, 4))).height == 4


def test_corrupt_and_unsupported_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ConfigError, match="cannot be decoded"):
        Image.from_path(broken)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ConfigError, match="not a supported image"):
        Image.from_path(text)
    with pytest.raises(ConfigError, match="not found"):
        load_media(tmp_path / "missing.png")
    with pytest.raises(ConfigError, match="folder"):
        load_media(tmp_path)


def test_audio_wav_flac_and_array(tmp_path: Path) -> None:
    clip = Audio.from_path(make_wav(tmp_path / "note.wav", 1.5))
    assert clip.mime == "audio/wav" and abs(clip.seconds - 1.5) < 1e-3 and clip.sample_rate == 16000
    flac = tmp_path / "note.flac"
    soundfile.write(flac, np.zeros(8000, dtype=np.float32), 16000)
    assert load_media(flac).mime == "audio/flac"
    assert abs(Audio.from_path(flac).seconds - 0.5) < 1e-3
    arr = Audio.from_array(np.zeros((16000, 2)), 16000)
    assert abs(arr.seconds - 1.0) < 1e-3
    with pytest.raises(ConfigError, match="positive sample rate"):
        Audio.from_array(np.zeros(10), 0)


def test_modalities_and_limits(tmp_path: Path, shot: Path) -> None:
    img = Image.from_path(shot).to_attachment()
    long_clip = Audio.from_path(make_wav(tmp_path / "long.wav", 31, rate=2000)).to_attachment()
    short_clip = Audio.from_path(make_wav(tmp_path / "short.wav", 1)).to_attachment()
    check_media([img, short_clip], modalities=ALL, model="E4B")
    with pytest.raises(ConfigError, match="no audio tower"):
        check_media([short_clip], modalities={"text", "image"}, model="google/gemma-4-31B-it")
    with pytest.raises(ConfigError, match="takes no images"):
        check_media([img], modalities={"text"}, model="tiny")
    with pytest.raises(ConfigError, match="up to 30 s"):
        check_media([long_clip], modalities=ALL, model="E2B")
    with pytest.raises(ConfigError, match="limit is 1"):
        check_media([img, img], modalities=ALL, model="E4B", limits=MediaLimits(max_images=1))
    with pytest.raises(ConfigError, match="pixels"):
        check_media([img], modalities=ALL, model="E4B", limits=MediaLimits(max_image_pixels=100))


def test_media_items_are_decoded_in_order(tmp_path: Path, shot: Path) -> None:
    img = Image.from_path(shot).to_attachment()
    clip = Audio.from_path(make_wav(tmp_path / "n.wav", 0.25)).to_attachment()
    items = to_media_items([clip, img])
    assert [i.modality for i in items] == ["audio", "image"]
    samples, rate = items[0].data
    assert rate == 16000 and samples.shape == (4000,)
    assert items[1].data.size == (64, 48) and items[1].data.mode == "RGB"


def test_sdk_task_with_media(shot: Path) -> None:
    text, atts = as_user_input(["What is wrong in this screenshot?", Image.from_path(shot)])
    assert text == "What is wrong in this screenshot?" and [a.kind for a in atts] == ["image"]
    assert as_user_input("plain") == ("plain", ())
    with pytest.raises(ConfigError, match="Unsupported task part"):
        as_user_input([42])  # type: ignore[list-item]
