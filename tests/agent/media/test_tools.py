"""view_image and media returned by tools, through the real ToolRegistry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gemma_agent.agent.media import Image
from gemma_agent.tools import ToolContext, ToolMedia, ToolOutput, ToolRegistry, tool
from gemma_agent.tools.builtin import media as media_module
from gemma_agent.tools.builtin import view_image
from PIL import Image as PILImage

from .conftest import make_png


async def run_view(ws: Path, path: str) -> object:
    registry = ToolRegistry([view_image])
    return await registry.call("view_image", {"path": path}, ToolContext(workspace=ws))


async def test_view_image_returns_the_file_as_media(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    png = make_png(tmp_path / "img" / "ui.png", (33, 21))
    outcome = await run_view(tmp_path, "img/ui.png")
    assert not outcome.is_error  # type: ignore[attr-defined]
    assert outcome.content.startswith("img/ui.png: PNG image, 33×21 pixels")  # type: ignore[attr-defined]
    [m] = outcome.media  # type: ignore[attr-defined]
    assert (m.kind, m.name, m.mime, m.data) == ("image", "ui.png", "image/png", png.read_bytes())
    jpg = tmp_path / "photo.jpg"
    PILImage.new("RGB", (8, 8)).save(jpg, format="JPEG")
    assert (await run_view(tmp_path, "photo.jpg")).media[0].mime == "image/jpeg"  # type: ignore[attr-defined]
    assert view_image.read_only


async def test_view_image_refuses_what_it_cannot_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    make_png(outside)
    try:
        ws = tmp_path / "ws"
        ws.mkdir()
        os.symlink(outside, ws / "link.png")
        for path, why in [
            (str(outside), "outside the workspace"),
            ("../x.png", "outside the workspace"),
            ("link.png", "points outside"),
            ("missing.png", "does not exist"),
            (".", "is a directory"),
        ]:
            outcome = await run_view(ws, path)
            assert outcome.is_error and why in outcome.content, (path, outcome)  # type: ignore[attr-defined]
            assert outcome.media == ()  # type: ignore[attr-defined]
    finally:
        outside.unlink()
    (ws / "notes.png").write_text("not an image")
    outcome = await run_view(ws, "notes.png")
    assert outcome.is_error and "notes.png is not an image" in outcome.content  # type: ignore[attr-defined]
    (ws / "cut.png").write_bytes(make_png(ws / "whole.png").read_bytes()[:60])
    outcome = await run_view(ws, "cut.png")
    assert outcome.is_error and "cannot be decoded" in outcome.content  # type: ignore[attr-defined]
    PILImage.new("RGB", (4, 4)).save(ws / "pic.tiff", format="TIFF")
    outcome = await run_view(ws, "pic.tiff")
    assert outcome.is_error and "TIFF" in outcome.content  # type: ignore[attr-defined]
    monkeypatch.setattr(media_module, "MAX_IMAGE_BYTES", 10)
    make_png(ws / "big.png")
    outcome = await run_view(ws, "big.png")
    assert outcome.is_error and "takes files up to 10 B" in outcome.content  # type: ignore[attr-defined]


async def test_registry_accepts_media_objects_and_refuses_other_attachments(tmp_path: Path) -> None:
    png = make_png(tmp_path / "a.png", (3, 3))

    @tool
    def as_image() -> Image:
        """Return an SDK Image."""
        return Image.from_path(png)

    @tool
    def as_output() -> ToolOutput:
        """Return text plus raw media."""
        return ToolOutput("two", media=(ToolMedia("image", "x.png", "image/png", b"\x89PNG"),))

    @tool
    def bad() -> ToolOutput:
        """Return something that is not media."""
        return ToolOutput("oops", media=("not media",))

    registry = ToolRegistry([as_image, as_output, bad])
    ctx = ToolContext(workspace=tmp_path)
    one = await registry.call("as_image", {}, ctx)
    assert one.content == "image a.png attached" and one.media[0].data == png.read_bytes()
    two = await registry.call("as_output", {}, ctx)
    assert two.content == "two" and two.media[0].name == "x.png"
    three = await registry.call("bad", {}, ctx)
    assert three.is_error and three.crashed and three.media == ()
    assert ToolMedia.of(Image.from_path(png).to_attachment()) is not None
    assert ToolMedia.of({"data": b"x", "mime": "image/png"}) is None
    assert ToolMedia.of(type("T", (), {"data": b"x", "mime": "text/plain"})()) is None
