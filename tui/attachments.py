"""Attachments typed or dropped into the prompt: a pasted file path, and the chip that names an
attachment in the transcript. No textual import here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..agent import MEDIA_SUFFIXES, describe_attachment


def pasted_path(text: str, base: str | Path | None = None) -> Path | None:
    r"""The image/audio file a pasted text names, or None when the text is not one such path.

    Terminals paste a dropped file as its path, sometimes quoted, with ``\ `` escapes or as a
    ``file://`` URL. A relative path is taken from ``base`` (the workspace).
    """
    s = text.strip()
    if not s or "\n" in s or len(s) > 4096:
        return None
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        s = s[1:-1]
    elif "\\ " in s:
        s = s.replace("\\ ", " ")
    if s.startswith("file://"):
        from urllib.parse import unquote, urlparse

        s = unquote(urlparse(s).path)
    if Path(s).suffix.lower() not in MEDIA_SUFFIXES:
        return None
    p = Path(s).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p if p.is_file() else None


def chip(media: Any) -> str:
    """An attachment as shown in the transcript: name, size, dimensions or duration."""
    describe = getattr(media, "describe", None)
    if callable(describe):
        return str(describe())
    if hasattr(media, "data_b64"):
        return describe_attachment(media)
    return str(getattr(media, "name", media))
