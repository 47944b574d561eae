"""What every renderer speaks: the request, the result, the protocol and its errors.

This module imports no torch or diffusers, so the MCP server, the clients and
the benchmarks can use it cheaply.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

from gen_searcher_core import limits
from gen_searcher_core.errors import UserFacingError

#: The first references the generator uses (Qwen-Image-Edit-2509 takes 1 to 3).
MAX_REFERENCES = limits.GENERATOR_REFERENCES
# The render limits live in gen_searcher_core.limits (docs/limits.md); these names stay for importers.
SIZE_MULTIPLE = limits.SIZE_MULTIPLE
MIN_SIDE = limits.MIN_SIDE
MAX_SIDE = limits.MAX_SIDE
MAX_PIXELS = limits.MAX_PIXELS
MIN_STEPS = limits.MIN_STEPS
MAX_STEPS = limits.MAX_STEPS
MAX_IMAGES = limits.MAX_IMAGES
MAX_PROMPT_CHARS = limits.MAX_PROMPT_CHARS
MAX_SEED = limits.MAX_SEED

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


def _check_text(prompt: object, negative_prompt: object) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRenderRequest("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidRenderRequest(f"prompt is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
    if not isinstance(negative_prompt, str) or len(negative_prompt) > MAX_PROMPT_CHARS:
        raise InvalidRenderRequest(f"negative_prompt must be a string of at most {MAX_PROMPT_CHARS} characters")


def _check_references(references: tuple[object, ...]) -> None:
    if len(references) > MAX_REFERENCES:
        raise InvalidRenderRequest(f"{len(references)} reference images given; at most {MAX_REFERENCES} are used")
    for index, image in enumerate(references):
        if not isinstance(image, Image.Image):
            raise InvalidRenderRequest(f"reference image {index + 1} is not an image")


def _check_numbers(steps: object, num_images: object, true_cfg_scale: float, guidance_scale: float | None) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise InvalidRenderRequest(f"steps must be an integer from {MIN_STEPS} to {MAX_STEPS}")
    if not isinstance(num_images, int) or not 1 <= num_images <= MAX_IMAGES:
        raise InvalidRenderRequest(f"num_images (num_images_per_prompt, n) must be from 1 to {MAX_IMAGES}")
    if not 0.0 <= float(true_cfg_scale) <= 30.0:
        raise InvalidRenderRequest("true_cfg_scale must be between 0 and 30")
    if guidance_scale is not None and not 0.0 <= float(guidance_scale) <= 30.0:
        raise InvalidRenderRequest("guidance_scale must be between 0 and 30")


@dataclass(frozen=True)
class RenderRequest:
    """One render, valid once constructed: every field is checked in ``__post_init__``.

    ``steps=None`` becomes the published default for the pipeline that runs it
    (text-only or edit), ``seed=None`` a fresh seed (so the result can report,
    and a caller reproduce, the seed used), and the references RGB, so
    renderers, clients and the engine take a request as it is and never check
    it again. :class:`InvalidRenderRequest` says what is wrong.
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
        references = tuple(self.reference_images)
        _check_text(self.prompt, self.negative_prompt)
        _check_references(references)
        check_size(self.width, self.height)
        steps = (DEFAULT_EDIT_STEPS if references else DEFAULT_TEXT_STEPS) if self.steps is None else self.steps
        _check_numbers(steps, self.num_images, self.true_cfg_scale, self.guidance_scale)
        seed = new_seed() if self.seed is None else self.seed
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise InvalidRenderRequest(f"seed must be an integer from 0 to {MAX_SEED}")
        rgb = tuple(img if img.mode == "RGB" else img.convert("RGB") for img in references)
        object.__setattr__(self, "reference_images", rgb)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "seed", seed)

    @property
    def is_edit(self) -> bool:
        return bool(self.reference_images)

    @property
    def default_steps(self) -> int:
        return DEFAULT_EDIT_STEPS if self.is_edit else DEFAULT_TEXT_STEPS

    @property
    def fixed_seed(self) -> int:
        """The request's seed (construction picks one when none was given)."""
        if self.seed is None:  # pragma: no cover - __post_init__ always sets it
            raise InvalidRenderRequest("the request has no seed")
        return self.seed

    def validated(self, *, size_multiple: int = SIZE_MULTIPLE) -> RenderRequest:
        """The request itself (it is valid once constructed); a pipeline whose sizes step by another
        ``size_multiple`` than ours checks that here."""
        if size_multiple != SIZE_MULTIPLE:
            check_size(self.width, self.height, size_multiple)
        return self

    def batch_key(self) -> tuple[object, ...] | None:
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
