"""RenderRequest validation and image decoding: the checks every renderer relies on."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from render_tools.base import (
    ASPECT_PRESETS,
    DEFAULT_EDIT_STEPS,
    DEFAULT_TEXT_STEPS,
    InvalidRenderRequest,
    RenderRequest,
    size_for_aspect,
)
from render_tools.imaging import decode_data_url, decode_image, png_data_url

from .conftest import solid


def test_defaults_follow_the_published_settings() -> None:
    text = RenderRequest(prompt="a fox").validated()
    edit = RenderRequest(prompt="a fox", reference_images=[solid((1, 2, 3))]).validated()
    assert (text.width, text.height) == (1024, 1024)
    assert text.steps == DEFAULT_TEXT_STEPS == 50
    assert edit.steps == DEFAULT_EDIT_STEPS == 40
    assert text.true_cfg_scale == 4.0 and text.negative_prompt == " "
    assert isinstance(text.seed, int) and 0 <= text.seed < 2**31
    assert RenderRequest(prompt="a fox", seed=7, steps=8).validated().seed == 7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": "   "}, "prompt must be a non-empty string"),
        ({"width": 1000}, "not a multiple of 16"),
        ({"height": 100_000}, "out of range"),
        ({"width": 32}, "out of range"),
        ({"steps": 0}, "steps must be"),
        ({"steps": 1}, "from 2 to 200"),
        ({"steps": 10_000}, "steps must be"),
        ({"num_images": 9}, "num_images"),
        ({"seed": -3}, "seed must be"),
        ({"true_cfg_scale": 1e9}, "true_cfg_scale"),
    ],
)
def test_bad_requests_get_clear_errors(changes: dict, message: str) -> None:
    with pytest.raises(InvalidRenderRequest, match=message):
        RenderRequest(**{"prompt": "a fox", **changes}).validated()


def test_more_than_three_references_are_refused() -> None:
    with pytest.raises(InvalidRenderRequest, match="at most 3"):
        RenderRequest(prompt="x", reference_images=[solid((i, i, i)) for i in range(4)]).validated()


def test_pixel_cap_applies_to_the_area() -> None:
    with pytest.raises(InvalidRenderRequest, match="pixels"):
        RenderRequest(prompt="x", width=2048, height=2048 + 16).validated()
    RenderRequest(prompt="x", width=2048, height=2048).validated()


def test_references_become_rgb_and_only_text_requests_batch() -> None:
    rgba = Image.new("RGBA", (64, 64), (1, 2, 3, 4))
    edit = RenderRequest(prompt="x", reference_images=[rgba]).validated()
    assert edit.reference_images[0].mode == "RGB"
    assert edit.batch_key() is None
    a = RenderRequest(prompt="a", seed=1, width=512).validated()
    b = RenderRequest(prompt="b", seed=2, width=512).validated()
    assert a.batch_key() == b.batch_key() is not None
    assert RenderRequest(prompt="c", width=768).validated().batch_key() != a.batch_key()
    assert RenderRequest(prompt="d", width=512, num_images=2).validated().batch_key() is None


def test_aspect_presets_are_renderable_sizes() -> None:
    for name, (width, height) in ASPECT_PRESETS.items():
        RenderRequest(prompt="x", width=width, height=height).validated()
        w, h = (int(part) for part in name.split(":"))
        assert abs(width / height - w / h) < 0.05, name
    assert size_for_aspect("16:9") == (1664, 928)
    with pytest.raises(InvalidRenderRequest, match="unknown aspect ratio"):
        size_for_aspect("5:1")


def test_data_urls_decode_and_validate() -> None:
    image = solid((10, 120, 200))
    decoded = decode_data_url(png_data_url(image))
    assert decoded.size == image.size and decoded.getpixel((1, 1)) == (10, 120, 200)
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG")
    assert decode_data_url("data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode()).size == image.size


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:text/plain;base64," + base64.b64encode(b"hello").decode(), "not an image"),
        ("data:image/png;base64," + base64.b64encode(b"hello, not a png").decode(), "not a valid image"),
        ("data:image/png;base64,%%%not-base64%%%", "not valid base64"),
        ("data:image/png,rawbytes", "base64-encoded"),
        ("data:nonsense", "well-formed"),
    ],
)
def test_bad_data_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidRenderRequest, match=message):
        decode_data_url(url, what="reference image 1")


def test_oversized_and_tiny_images_are_refused() -> None:
    with pytest.raises(InvalidRenderRequest, match="over the limit"):
        decode_image(b"x" * 200, max_bytes=100)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    with pytest.raises(InvalidRenderRequest, match="at least"):
        decode_image(buf.getvalue())
