"""Small test images, made one way for every area: PNG bytes of a colour, optionally striped.

Areas keep their own names and defaults (``tests.policy.conftest.png``,
``tests.verl.conftest.png_bytes``…) as one-line calls of :func:`png_bytes`,
so the pixels their tests were written against stay the same.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

Colour = tuple[int, int, int]


def solid_image(colour: Colour, size: tuple[int, int], *, stripe_every: int = 0) -> Image.Image:
    """An RGB image of ``colour``; with ``stripe_every`` > 0, every that many columns a stripe of the
    inverse colour (so thumbnails and hashes are not of a flat picture)."""
    image = Image.new("RGB", size, colour)
    if stripe_every > 0:
        inverse = (255 - colour[0], 255 - colour[1], 255 - colour[2])
        for x in range(0, size[0], stripe_every):
            for y in range(size[1]):
                image.putpixel((x, y), inverse)
    return image


def png_bytes(colour: Colour = (200, 30, 30), size: tuple[int, int] = (32, 24), *, stripe_every: int = 0) -> bytes:
    """The PNG encoding of :func:`solid_image`."""
    buffer = io.BytesIO()
    solid_image(colour, size, stripe_every=stripe_every).save(buffer, format="PNG")
    return buffer.getvalue()


def png_base64(colour: Colour, size: tuple[int, int] = (32, 24), *, stripe_every: int = 0) -> str:
    return base64.b64encode(png_bytes(colour, size, stripe_every=stripe_every)).decode()


def write_png(path: Path, colour: Colour = (200, 30, 30), size: tuple[int, int] = (32, 24)) -> Path:
    """Write :func:`png_bytes` to ``path`` (folders created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(colour, size))
    return path
