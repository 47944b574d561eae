"""Image encodings every area passes around: base64, ``data:`` URLs, PNG bytes and JPEG thumbnails.

Pillow is imported when a function needs it, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_THUMBNAIL_SIDE = 512
DEFAULT_THUMBNAIL_QUALITY = 85


def b64(data: bytes) -> str:
    """``data`` as base64 text (what MCP image content and data URLs carry)."""
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes | str, mime_type: str) -> str:
    """A ``data:`` URL of raw bytes, or of base64 text that is already encoded."""
    encoded = b64(data) if isinstance(data, bytes) else data
    return f"data:{mime_type};base64,{encoded}"


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG (no optimisation pass: it costs more than it saves here)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(image: Image.Image) -> str:
    return data_url(png_bytes(image), "image/png")


def as_png(data: bytes, media_type: str) -> bytes:
    """Encoded image bytes as PNG (RGB); PNG bytes are returned as they are."""
    if media_type == "image/png":
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return png_bytes(img.convert("RGB"))


def jpeg_thumbnail(
    data: bytes, max_side: int = DEFAULT_THUMBNAIL_SIDE, quality: int = DEFAULT_THUMBNAIL_QUALITY
) -> bytes:
    """A JPEG of encoded image bytes whose longest side is at most ``max_side`` pixels."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as source:
        source.draft("RGB", (max_side, max_side))  # a JPEG decodes at a reduced size: much faster
        img = source.convert("RGB")
    img.thumbnail((max_side, max_side))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()
