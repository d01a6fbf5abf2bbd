"""view_image: show the model an image file from the workspace.

The image goes back with the tool result as media (``ToolOutput.media``); the agent places it
after the tool response, where Gemma 4 sees it (docs/format.md, 'Tool responses'). Models
without a vision tower get an error result instead (the agent checks the engine's modalities).
"""

from __future__ import annotations

import io

from ..base import ToolContext, ToolError, ToolMedia, ToolOutput, tool
from .files import regular_file

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


@tool(read_only=True)
def view_image(ctx: ToolContext, path: str) -> ToolOutput:
    """Look at an image file (PNG, JPEG, WebP, GIF or BMP) in the workspace.

    The image is shown to you right after this tool's response.

    Args:
        path: Image file path relative to the workspace root.
    """
    resolved, shown, size = regular_file(
        ctx, path, folder_hint="use list_dir or glob to find image files"
    )
    if size > MAX_IMAGE_BYTES:
        raise ToolError(
            f"{shown} is {_size(size)}; view_image takes files up to {_size(MAX_IMAGE_BYTES)}"
        )
    try:
        from PIL import Image as PILImage
    except ImportError:
        raise ToolError(
            "view_image needs Pillow, which is not installed (pip install 'gemma-agent[media]')"
        ) from None
    with ctx.files.os_errors(resolved, "read"):
        data = resolved.read_bytes()
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.verify()
        with PILImage.open(io.BytesIO(data)) as img:
            width, height, fmt = img.width, img.height, img.format or ""
    except PILImage.UnidentifiedImageError:
        raise ToolError(
            f"{shown} is not an image (view_image shows PNG, JPEG, WebP, GIF or BMP files)"
        ) from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise ToolError(f"{shown}: the image cannot be decoded ({exc})") from None
    mime = _FORMATS.get(fmt)
    if mime is None:
        raise ToolError(
            f"{shown} is a {fmt or 'unknown'} image; view_image shows PNG, JPEG, WebP, GIF or BMP"
        )
    media = ToolMedia("image", resolved.name, mime, data)
    return ToolOutput(
        f"{shown}: {fmt} image, {width}×{height} pixels, {_size(len(data))}; shown below.",
        media=(media,),
    )


def media_tools() -> list[object]:
    """The media built-ins (for models with a vision tower): view_image."""
    return [view_image]


__all__ = ["MAX_IMAGE_BYTES", "media_tools", "view_image"]
