"""Images and audio for user messages and tool results.

    agent.run(["What is wrong in this screenshot?", Image.from_path("shot.png")])

Media are checked before anything reaches the engine: a file that cannot be read or decoded,
an unsupported format, or one over the limits raises `ConfigError` with what to do. Pillow and
soundfile are optional (the `media` extra) and imported only when media are used.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from ..errors import ConfigError
from .engines.base import MediaItem
from .media_tokens import AUDIO_SAMPLE_RATE, DEFAULT_IMAGE_SOFT_TOKENS, expanded_tokens
from .messages import Attachment

IMAGE_MIMES = {"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp"}
AUDIO_MIMES = {"audio/wav", "audio/x-wav", "audio/flac", "audio/mpeg", "audio/ogg"}
_SUFFIX_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
}
MEDIA_SUFFIXES = frozenset(_SUFFIX_MIME)  # the file name endings load_media takes
_INSTALL = "install the media extra: pip install 'gemma-agent[media]'"


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Per-request limits, checked before a request is built."""

    max_images: int = 8
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_audio_clips: int = 4
    max_audio_bytes: int = 50 * 1024 * 1024
    max_audio_seconds: float = 30.0  # Gemma 4's audio encoder takes clips up to 30 s


def _pil() -> Any:
    try:
        from PIL import Image as PILImage
    except ImportError as e:
        raise ConfigError(f"Images need Pillow: {_INSTALL}") from e
    return PILImage


def _sniff_mime(data: bytes, name: str) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"BM"):
        return "image/bmp"
    if data.startswith(b"fLaC"):
        return "audio/flac"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return _SUFFIX_MIME.get(Path(name).suffix.lower()) or mimetypes.guess_type(name)[0]


def _read(path: str | Path) -> tuple[bytes, str]:
    p = Path(path).expanduser()
    try:
        return p.read_bytes(), p.name
    except FileNotFoundError as e:
        raise ConfigError(f"Media file not found: {p}. Check the path.") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{p} is a folder; attach an image or audio file.") from e
    except OSError as e:
        raise ConfigError(f"Cannot read media file {p}: {e.strerror}.") from e


class _Media:
    """What Image and Audio share: reading a file, and the attachment a message stores."""

    __slots__ = ()
    kind: ClassVar[Literal["image", "audio"]]
    data: bytes
    mime: str
    name: str

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Self:
        raise NotImplementedError

    @classmethod
    def from_path(cls, path: str | Path) -> Self:
        data, name = _read(path)
        return cls.from_bytes(data, name)

    def to_attachment(self) -> Attachment:
        return Attachment(
            kind=self.kind,
            name=self.name,
            mime=self.mime,
            data_b64=base64.b64encode(self.data).decode(),
        )


@dataclass(frozen=True, slots=True)
class Image(_Media):
    kind: ClassVar[Literal["image", "audio"]] = "image"
    data: bytes
    mime: str
    name: str
    width: int
    height: int

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "image") -> Self:
        mime = _sniff_mime(data, name)
        if mime not in IMAGE_MIMES:
            raise ConfigError(
                f"{name}: not a supported image ({mime or 'unknown format'}); "
                "use PNG, JPEG, WebP, GIF or BMP."
            )
        pil = _pil()
        try:
            with pil.open(io.BytesIO(data)) as img:
                img.verify()
            with pil.open(io.BytesIO(data)) as img:
                width, height = img.size
        except Exception as e:  # Pillow raises many types for broken files
            raise ConfigError(f"{name}: the image cannot be decoded ({e}).") from e
        return cls(data=data, mime=mime, name=name, width=width, height=height)

    @classmethod
    def from_pil(cls, image: Any, name: str = "image.png") -> Self:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return cls.from_bytes(buf.getvalue(), name)

    def describe(self) -> str:
        return f"{self.name} ({_size(len(self.data))}, {self.width}×{self.height})"


@dataclass(frozen=True, slots=True)
class Audio(_Media):
    kind: ClassVar[Literal["image", "audio"]] = "audio"
    data: bytes  # the encoded file (WAV, FLAC, MP3, OGG)
    mime: str
    name: str
    seconds: float
    sample_rate: int

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "audio") -> Self:
        mime = _sniff_mime(data, name)
        if mime not in AUDIO_MIMES:
            raise ConfigError(
                f"{name}: not a supported audio file ({mime or 'unknown format'}); "
                "use WAV, FLAC, MP3 or OGG."
            )
        seconds, rate = _audio_length(data, name, mime)
        return cls(data=data, mime=mime, name=name, seconds=seconds, sample_rate=rate)

    @classmethod
    def from_array(cls, samples: Any, sample_rate: int, name: str = "audio.wav") -> Self:
        """Mono or multi-channel float samples in [-1, 1] (numpy array or sequence)."""
        import numpy as np

        arr = np.asarray(samples, dtype=np.float32)
        if arr.ndim == 2:  # (frames, channels) -> mono
            arr = arr.mean(axis=1)
        if arr.ndim != 1 or sample_rate <= 0:
            raise ConfigError(f"{name}: expected 1-D samples and a positive sample rate.")
        pcm = (np.clip(arr, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm)
        return cls.from_bytes(buf.getvalue(), name)

    def describe(self) -> str:
        return f"{self.name} ({_size(len(self.data))}, {self.seconds:.1f} s)"


def _media_class(kind: str | None) -> type[Image] | type[Audio]:
    return Audio if kind == "audio" else Image


def _audio_length(data: bytes, name: str, mime: str) -> tuple[float, int]:
    frames, rate = _audio_frames(data, name, mime)
    return frames / rate, rate


def _audio_frames(data: bytes, name: str, mime: str) -> tuple[int, int]:
    """(samples per channel, sample rate), read from the file's header."""
    if mime in ("audio/wav", "audio/x-wav"):
        try:
            with wave.open(io.BytesIO(data)) as w:
                return w.getnframes(), w.getframerate()
        except (wave.Error, EOFError):
            pass  # e.g. float WAV: let soundfile try
    try:
        import soundfile
    except ImportError as e:
        raise ConfigError(f"{name}: decoding {mime} needs soundfile: {_INSTALL}") from e
    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError
        raise ConfigError(f"{name}: the audio cannot be decoded ({e}).") from e
    return int(info.frames), int(info.samplerate)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def load_media(path: str | Path) -> Image | Audio:
    """An image or audio file, by its content (used by `--image/--audio`, `/attach`)."""
    data, name = _read(path)
    mime = _sniff_mime(data, name)
    if mime in AUDIO_MIMES:
        return Audio.from_bytes(data, name)
    return Image.from_bytes(data, name)


def describe_attachment(att: Attachment) -> str:
    """``name (size, W×H)`` or ``name (size, N s)`` for a stored attachment (chips)."""
    try:
        media = _media_class(att.kind).from_bytes(attachment_bytes(att), att.name)
    except (ConfigError, ValueError):
        return att.name
    return media.describe()


def attachment_bytes(att: Attachment) -> bytes:
    return base64.b64decode(att.data_b64)


def check_media(
    attachments: Iterable[Attachment],
    *,
    modalities: frozenset[str] | set[str],
    model: str,
    limits: MediaLimits = MediaLimits(),
    prompt_media: Sequence[Attachment] = (),
    variant: str | None = None,
    max_model_len: int | None = None,
    image_soft_tokens: int = 280,
) -> None:
    """Refuse media the model cannot take or that break the limits, before any request.

    ``prompt_media``: attachments already in the conversation; every request carries them, so
    they count towards the per-request limits (only their headers are read). ``variant``: the
    Gemma 4 size; only E2B and E4B have an audio tower, whatever an engine declares.
    ``max_model_len``: the engine's context; media whose expanded size alone fills it are
    refused (``image_soft_tokens``: the engine's budget per image, `EngineInfo`).
    """
    attachments = list(attachments)
    images = [a for a in attachments if a.kind == "image"]
    clips = [a for a in attachments if a.kind == "audio"]
    if clips and variant is not None and _no_audio_tower(variant):
        modalities = set(modalities) - {"audio"}
    if images and "image" not in modalities:
        raise ConfigError(
            f"{model} takes no images (text-only checkpoint, or an engine started without its "
            "vision tower). Use a Gemma 4 checkpoint with a vision tower, e.g. "
            "google/gemma-4-E4B-it, and start it with media on (--image/--audio on the command "
            "line, Agent(..., engine_options={'media': True}) in the SDK). Without weights, "
            "--model tiny-mm has random vision and audio towers."
        )
    if clips and "audio" not in modalities:
        raise ConfigError(
            f"{model} takes no audio (no audio tower, or an engine started without it); audio "
            "works on google/gemma-4-E2B-it and google/gemma-4-E4B-it with media on (without "
            "weights: --model tiny-mm)."
        )
    n_images = len(images) + sum(a.kind == "image" for a in prompt_media)
    n_clips = len(clips) + sum(a.kind == "audio" for a in prompt_media)
    earlier = " (counting those already in the conversation)" if prompt_media else ""
    fix = "; start a new session or attach fewer" if prompt_media else ""
    if n_images > limits.max_images:
        raise ConfigError(
            f"{n_images} images in one request{earlier}; the limit is {limits.max_images}{fix}."
        )
    if n_clips > limits.max_audio_clips:
        raise ConfigError(
            f"{n_clips} audio clips in one request{earlier}; the limit is "
            f"{limits.max_audio_clips}{fix}."
        )
    for a in images:
        img = Image.from_bytes(attachment_bytes(a), a.name)
        if len(img.data) > limits.max_image_bytes:
            raise ConfigError(
                f"{a.name} is {_size(len(img.data))}; the limit is {_size(limits.max_image_bytes)}."
            )
        if img.width * img.height > limits.max_image_pixels:
            raise ConfigError(
                f"{a.name} is {img.width}×{img.height}; the limit is "
                f"{limits.max_image_pixels:,} pixels. Downscale it first."
            )
    for a in clips:
        clip = Audio.from_bytes(attachment_bytes(a), a.name)
        if len(clip.data) > limits.max_audio_bytes:
            raise ConfigError(
                f"{a.name} is {_size(len(clip.data))}; the limit is {_size(limits.max_audio_bytes)}."
            )
        if clip.seconds > limits.max_audio_seconds:
            raise ConfigError(
                f"{a.name} lasts {clip.seconds:.1f} s; Gemma 4 takes clips up to "
                f"{limits.max_audio_seconds:.0f} s. Split it into shorter clips."
            )
    if max_model_len is not None and attachments:
        every = [*prompt_media, *attachments]
        tokens = sum(attachment_tokens(a, image_soft_tokens=image_soft_tokens) for a in every)
        if tokens >= max_model_len:
            what = _count_words(
                sum(a.kind == "image" for a in every), sum(a.kind == "audio" for a in every)
            )
            raise ConfigError(
                f"{what}{earlier} take {tokens:,} tokens once the engine expands them (up to "
                f"{image_soft_tokens + 2} an image, about 25 a second of audio), more than the "
                f"{max_model_len:,}-token context holds. Attach fewer or shorter media"
                f"{'; start a new session' if prompt_media else ''}, or start the engine with "
                "a longer context (max_model_len)."
            )


def _count_words(images: int, clips: int) -> str:
    parts = []
    if images:
        parts.append(f"{images} image{'s' if images != 1 else ''}")
    if clips:
        parts.append(f"{clips} audio clip{'s' if clips != 1 else ''}")
    return " and ".join(parts)


def prompt_attachments(history: Iterable[Any]) -> list[Attachment]:
    """Every attachment of a history in prompt order: a user message's after its text, a tool
    result's after its ``<tool_response|>`` (the order of the placeholders in the prompt)."""
    out: list[Attachment] = []
    for m in history:
        out += getattr(m, "attachments", ())
        for r in getattr(m, "tool_results", ()):
            out += r.attachments
    return out


def tool_attachment(media: Any) -> Attachment:
    """Media a tool returned (``tools.ToolMedia``, Image, Audio) as a checked attachment."""
    if isinstance(media, Image | Audio):
        return media.to_attachment()
    data, name = getattr(media, "data", None), str(getattr(media, "name", "media"))
    if not isinstance(data, bytes):
        raise ConfigError(f"{name}: a tool returned media without bytes.")
    return _media_class(getattr(media, "kind", None)).from_bytes(data, name).to_attachment()


def _no_audio_tower(variant: str) -> bool:
    v = variant.upper()
    return any(size in v for size in ("12B", "26B", "31B"))


def to_media_items(attachments: Sequence[Attachment]) -> list[MediaItem]:
    """Decoded media in prompt order, as the engine hands them to vLLM."""
    items: list[MediaItem] = []
    for a in attachments:
        raw = attachment_bytes(a)
        if a.kind == "image":
            with _pil().open(io.BytesIO(raw)) as img:
                items.append(MediaItem("image", img.convert("RGB"), a.name))
        else:
            items.append(MediaItem("audio", _decode_audio(raw, a.name), a.name))
    return items


def _decode_audio(raw: bytes, name: str) -> tuple[Any, int]:
    try:
        import soundfile
    except ImportError as e:
        raise ConfigError(f"{name}: decoding audio needs soundfile: {_INSTALL}") from e
    samples, rate = soundfile.read(io.BytesIO(raw), dtype="float32", always_2d=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate != AUDIO_SAMPLE_RATE:
        # The audio tower takes 16 kHz. vLLM would resample with torchaudio, which CPU installs
        # lack (its PyPI build needs CUDA): do it here, the same way for every engine.
        try:
            import soxr
        except ImportError as e:
            raise ConfigError(f"{name}: resampling audio needs soxr: {_INSTALL}") from e
        samples = soxr.resample(samples, rate, AUDIO_SAMPLE_RATE).astype("float32", copy=False)
        rate = AUDIO_SAMPLE_RATE
    return samples, int(rate)


def as_user_input(
    task: str | Sequence[str | Image | Audio | Attachment],
) -> tuple[str, tuple[Attachment, ...]]:
    """Split an SDK task (a string, or a list of text and media) into text and attachments."""
    if isinstance(task, str):
        return task, ()
    texts: list[str] = []
    atts: list[Attachment] = []
    for part in task:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Image | Audio):
            atts.append(part.to_attachment())
        elif isinstance(part, Attachment):
            atts.append(part)
        elif isinstance(part, str | Path):
            atts.append(load_media(part).to_attachment())
        else:
            raise ConfigError(
                f"Unsupported task part {type(part).__name__}: pass str, Image or Audio."
            )
    return "\n".join(texts), tuple(atts)


# -- Prompt size: the sizes of attachments (their token arithmetic is in media_tokens.py) -----
# (kind, length, hash of data_b64) -> size. A str caches its hash, so the same attachment
# object costs a dict lookup; a copy (a resumed session) is hashed once. Sizes only: no bytes
# are kept alive.
_SIZES: dict[tuple[str, int, int], tuple[int, int]] = {}
_SIZES_MAX = 4096


def attachment_size(att: Attachment) -> tuple[int, int]:
    """(width, height) of an image attachment, (samples, sample rate) of an audio one, read
    from the file's header (computed once per attachment)."""
    key = (att.kind, len(att.data_b64), hash(att.data_b64))
    size = _SIZES.get(key)
    if size is None:
        raw = attachment_bytes(att)
        if att.kind == "image":
            try:
                with _pil().open(io.BytesIO(raw)) as img:  # lazy: reads the header only
                    size = (int(img.width), int(img.height))
            except ConfigError:
                raise
            except Exception as e:  # Pillow raises many types for broken files
                raise ConfigError(f"{att.name}: the image cannot be decoded ({e}).") from e
        else:
            size = _audio_frames(raw, att.name, _sniff_mime(raw, att.name) or att.mime)
        if len(_SIZES) >= _SIZES_MAX:
            del _SIZES[next(iter(_SIZES))]  # the oldest
        _SIZES[key] = size
    return size


def attachment_tokens(
    att: Attachment, *, image_soft_tokens: int = DEFAULT_IMAGE_SOFT_TOKENS
) -> int:
    """Ids an attachment takes in the engine's prompt once vLLM expanded its placeholder
    (``<|image>`` + soft tokens + ``<image|>``). ``image_soft_tokens``: the engine's
    per-image budget (`EngineInfo.image_soft_tokens`)."""
    return expanded_tokens(att.kind, attachment_size(att), image_soft_tokens)


def media_expansion(
    attachments: Iterable[Attachment], *, image_soft_tokens: int = DEFAULT_IMAGE_SOFT_TOKENS
) -> int:
    """What the attachments add to a prompt's length beyond their placeholder id each."""
    return sum(attachment_tokens(a, image_soft_tokens=image_soft_tokens) - 1 for a in attachments)
