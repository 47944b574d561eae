"""Image bytes in and out of renderers: PNG/base64 encoding, data URLs, validation."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image

from gen_searcher_core.imaging import b64, png_bytes
from gen_searcher_core.imaging import png_data_url as png_data_url  # re-exported for render clients
from render_tools.base import InvalidRenderRequest

#: Largest encoded reference image accepted (data URL payload, upload or download).
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Largest decoded reference image (pixels); guards against decompression bombs.
MAX_IMAGE_PIXELS = 40_000_000
MIN_IMAGE_SIDE = 8
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp"})

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I)


def png_base64(image: Image.Image) -> str:
    return b64(png_bytes(image))


def decode_image(data: bytes, *, what: str = "image", max_bytes: int = MAX_IMAGE_BYTES) -> Image.Image:
    """Decode and validate encoded image bytes; return an RGB image or raise a clear error."""
    if len(data) > max_bytes:
        raise InvalidRenderRequest(f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if not data:
        raise InvalidRenderRequest(f"{what} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise InvalidRenderRequest(
                        f"{what} is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS} pixels"
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                rgb = img.convert("RGB")
    except InvalidRenderRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRenderRequest(f"{what} is too large to decode") from None
    except Exception:  # noqa: BLE001  Pillow raises many types for bad input
        raise InvalidRenderRequest(f"{what} is not a valid image (PNG, JPEG, WebP, GIF or BMP)") from None
    if min(rgb.size) < MIN_IMAGE_SIDE:
        raise InvalidRenderRequest(f"{what} is {rgb.width}x{rgb.height}; each side must be at least {MIN_IMAGE_SIDE}")
    return rgb


def decode_base64(text: str, *, what: str = "image", max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    # base64 is 4/3 the size of its payload: refuse before decoding anything huge.
    if len(text) > max_bytes * 4 // 3 + 8:
        raise InvalidRenderRequest(f"{what} is over the limit of {max_bytes} bytes")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRenderRequest(f"{what} is not valid base64") from None


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def decode_data_url(url: str, *, what: str = "image", max_bytes: int = MAX_IMAGE_BYTES) -> Image.Image:
    """Decode a ``data:image/...;base64,...`` URL into a validated RGB image."""
    match = _DATA_URL.match(url)
    if not match:
        raise InvalidRenderRequest(f"{what} is not a well-formed data URL")
    media_type = (match.group("type") or "").lower()
    if media_type and media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRenderRequest(f"{what} is a data URL of type {media_type}, not an image")
    if not match.group("b64"):
        raise InvalidRenderRequest(f"{what} data URL must be base64-encoded")
    payload = decode_base64(url[match.end() :], what=what, max_bytes=max_bytes)
    return decode_image(payload, what=what, max_bytes=max_bytes)
