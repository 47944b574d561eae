"""What every renderer speaks: the request, the result, the protocol and its errors.

This module imports no torch or diffusers, so the MCP server, the clients and
the benchmarks can use it cheaply.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from PIL import Image

from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.limits import GENERATOR_REFERENCES

#: The first references the generator uses (Qwen-Image-Edit-2509 takes 1 to 3).
MAX_REFERENCES = GENERATOR_REFERENCES
SIZE_MULTIPLE = 16
MIN_SIDE = 64
MAX_SIDE = 2048
MAX_PIXELS = 2048 * 2048
MIN_STEPS = 2  # Qwen-Image's scheduler (shift_terminal) divides by zero at a single step
MAX_STEPS = 200
MAX_IMAGES = 4
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**63 - 1

#: Published defaults (Qwen-Image model cards): 50 steps text-only, 40 steps for Edit-2509.
DEFAULT_TEXT_STEPS = 50
DEFAULT_EDIT_STEPS = 40
DEFAULT_TRUE_CFG_SCALE = 4.0
DEFAULT_NEGATIVE_PROMPT = " "
DEFAULT_SIZE = (1024, 1024)

#: Qwen-Image's usual sizes per aspect ratio (width, height), rounded to multiples of 16.
ASPECT_PRESETS: dict[str, tuple[int, int]] = {
    "1:1": (1328, 1328),
    "16:9": (1664, 928),
    "9:16": (928, 1664),
    "4:3": (1472, 1136),
    "3:4": (1136, 1472),
    "3:2": (1584, 1056),
    "2:3": (1056, 1584),
}


class RenderError(UserFacingError):
    """A render failed; ``str(error)`` is a clear message fit for a tool result or an HTTP answer."""


class InvalidRenderRequest(RenderError, ValueError):
    """The request itself is wrong (caller's fault); retrying it unchanged will fail again."""


class RendererBusy(RenderError):
    """The renderer is at capacity right now; retry later."""


class RendererUnavailable(RenderError):
    """The renderer cannot serve at the moment (not configured, down, or failing)."""


def error_for_http_status(status: int, message: str) -> RenderError:
    """The error a client raises for a remote renderer's HTTP error answer."""
    if status in (400, 404, 413, 422):
        return InvalidRenderRequest(message)
    if status in (429, 503):
        return RendererBusy(message)
    return RendererUnavailable(message)


def size_for_aspect(aspect: str) -> tuple[int, int]:
    """(width, height) of a preset such as ``"16:9"``."""
    try:
        return ASPECT_PRESETS[aspect.strip()]
    except KeyError:
        known = ", ".join(ASPECT_PRESETS)
        raise InvalidRenderRequest(f"unknown aspect ratio {aspect!r}; known: {known}") from None


def new_seed() -> int:
    return secrets.randbelow(2**31)


def check_size(width: int, height: int, multiple: int = SIZE_MULTIPLE) -> None:
    """Raise :class:`InvalidRenderRequest` unless ``width`` x ``height`` is a size we render."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRenderRequest(f"{name} must be an integer number of pixels")
        if value < MIN_SIDE or value > MAX_SIDE:
            raise InvalidRenderRequest(f"{name} {value} is out of range: use {MIN_SIDE} to {MAX_SIDE} pixels")
        if value % multiple:
            raise InvalidRenderRequest(f"{name} {value} is not a multiple of {multiple}")
    if width * height > MAX_PIXELS:
        raise InvalidRenderRequest(f"{width}x{height} is over the limit of {MAX_PIXELS} pixels")


@dataclass(frozen=True)
class RenderRequest:
    """One render. ``steps=None`` means the published default for the pipeline that runs it.

    ``seed=None`` means "pick one"; :meth:`validated` fixes it so the result can
    report (and a caller can reproduce) the seed used.
    """

    prompt: str
    reference_images: tuple[Image.Image, ...] = ()
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]
    seed: int | None = None
    steps: int | None = None
    true_cfg_scale: float = DEFAULT_TRUE_CFG_SCALE
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    guidance_scale: float | None = None
    num_images: int = 1

    def __post_init__(self) -> None:
        # Accept any sequence of images; store a tuple so requests stay hashable-ish and immutable.
        if not isinstance(self.reference_images, tuple):
            object.__setattr__(self, "reference_images", tuple(self.reference_images))

    @property
    def is_edit(self) -> bool:
        return bool(self.reference_images)

    @property
    def default_steps(self) -> int:
        return DEFAULT_EDIT_STEPS if self.is_edit else DEFAULT_TEXT_STEPS

    @property
    def fixed_seed(self) -> int:
        """The seed of a :meth:`validated` request (validation picks one when none was given)."""
        if self.seed is None:
            raise InvalidRenderRequest("the request has no seed yet: validate it first")
        return self.seed

    def validated(self, *, size_multiple: int = SIZE_MULTIPLE) -> RenderRequest:
        """Check every field; return a copy with at most 3 references (RGB) and a fixed seed and step count."""
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidRenderRequest("prompt must be a non-empty string")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise InvalidRenderRequest(f"prompt is {len(self.prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
        if not isinstance(self.negative_prompt, str) or len(self.negative_prompt) > MAX_PROMPT_CHARS:
            raise InvalidRenderRequest(f"negative_prompt must be a string of at most {MAX_PROMPT_CHARS} characters")
        if len(self.reference_images) > MAX_REFERENCES:
            raise InvalidRenderRequest(
                f"{len(self.reference_images)} reference images given; at most {MAX_REFERENCES} are used"
            )
        for index, image in enumerate(self.reference_images):
            if not isinstance(image, Image.Image):
                raise InvalidRenderRequest(f"reference image {index + 1} is not an image")
        check_size(self.width, self.height, size_multiple)
        steps = self.default_steps if self.steps is None else self.steps
        if not isinstance(steps, int) or isinstance(steps, bool) or not MIN_STEPS <= steps <= MAX_STEPS:
            raise InvalidRenderRequest(f"steps must be an integer from {MIN_STEPS} to {MAX_STEPS}")
        if not isinstance(self.num_images, int) or not 1 <= self.num_images <= MAX_IMAGES:
            raise InvalidRenderRequest(f"num_images (num_images_per_prompt, n) must be from 1 to {MAX_IMAGES}")
        if not 0.0 <= float(self.true_cfg_scale) <= 30.0:
            raise InvalidRenderRequest("true_cfg_scale must be between 0 and 30")
        if self.guidance_scale is not None and not 0.0 <= float(self.guidance_scale) <= 30.0:
            raise InvalidRenderRequest("guidance_scale must be between 0 and 30")
        seed = new_seed() if self.seed is None else self.seed
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise InvalidRenderRequest(f"seed must be an integer from 0 to {MAX_SEED}")
        refs = tuple(img if img.mode == "RGB" else img.convert("RGB") for img in self.reference_images)
        return replace(self, reference_images=refs, seed=seed, steps=steps)

    def batch_key(self) -> tuple | None:
        """Requests with equal keys can share one pipeline call; ``None``: render alone.

        Only text-only single-image requests batch (the edit pipeline takes one prompt per call).
        """
        if self.is_edit or self.num_images != 1:
            return None
        return (self.width, self.height, self.steps, self.true_cfg_scale, self.negative_prompt, self.guidance_scale)


@dataclass
class RenderResult:
    """Rendered image(s) in request order; ``seed`` is the seed of the first (image i used ``seed + i``)."""

    images: list[Image.Image]
    seed: int
    elapsed_s: float
    model: str
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def image(self) -> Image.Image:
        return self.images[0]


@runtime_checkable
class Renderer(Protocol):
    """Anything that turns a :class:`RenderRequest` into a :class:`RenderResult`."""

    name: str

    async def render(self, request: RenderRequest) -> RenderResult: ...

    async def aclose(self) -> None: ...
