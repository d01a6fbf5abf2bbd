"""Attachments in the prompt: a pasted or dropped file path."""

from __future__ import annotations

from pathlib import Path

from gemma_agent.tui.attachments import pasted_path

from ..agent.media.conftest import make_png


def test_pasted_paths(tmp_path: Path) -> None:
    spaced = make_png(tmp_path / "my shot.png")
    rel = make_png(tmp_path / "rel.png")
    assert pasted_path(f"'{spaced}'") == spaced
    assert pasted_path(f'"{spaced}"  ') == spaced
    assert pasted_path(str(spaced).replace(" ", "\\ ")) == spaced
    assert pasted_path(spaced.as_uri()) == spaced
    assert pasted_path("rel.png", tmp_path) == rel
    assert pasted_path("rel.png", tmp_path / "elsewhere") is None
    (tmp_path / "code.py").write_text("x")
    assert pasted_path(str(tmp_path / "code.py")) is None  # not media: sent as text
    assert pasted_path("describe rel.png please", tmp_path) is None
    assert pasted_path(f"{rel}\n{rel}") is None
