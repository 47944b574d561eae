"""The ``render`` tool: Qwen-Image from a prompt and up to three stored reference images.

Offered only when a renderer is configured (``GEN_SEARCHER_RENDER__BACKEND``);
``gen-searcher tools`` reports why it is missing otherwise. The rendered image
goes into the image store; the caller gets its id, a JPEG thumbnail and the
``image://{id}`` URI of the full image (in the text and the structured result;
a resource, not a ``resource_link`` block, which some clients take for a
fetchable URL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import mcp_types
from mcp.server.mcpserver import Context, MCPServer
from pydantic import AfterValidator, Field

from gen_searcher_core import limits
from gen_searcher_core.errors import first_leaf
from gen_searcher_core.tool_results import RenderResult
from mcp_server.services import Services
from mcp_server.tools.results import error_result, jpeg_content
from render_tools.settings import RenderSettings

if TYPE_CHECKING:  # PIL and the renderer types load with the first render
    from PIL import Image

    from render_tools.base import RenderResult as RendererResult

logger = logging.getLogger(__name__)

MAX_REFERENCE_IDS = limits.MAX_REFERENCES  # the published protocol hands over 1-5 references
USED_REFERENCES = limits.GENERATOR_REFERENCES  # of which the first 3 are used
PROGRESS_EVERY_S = 2.0  # progress notifications while a render (or the model load before it) runs
T = TypeVar("T")

DESCRIPTION = (
    "Render an image with Qwen-Image. Give a detailed prompt; refer to reference images by their order "
    "('the first reference image'). reference_image_ids are image ids (img_…) from image_search or earlier "
    "renders; the first 3 are used (with none, the image is drawn from the prompt alone). Returns the new "
    "image's id, a thumbnail and the URI image://{id} of the full image (read it as a resource)."
)

Prompt = Annotated[str, Field(description="what to draw, in detail", min_length=1, max_length=limits.MAX_PROMPT_CHARS)]
ReferenceIds = Annotated[
    list[str],
    Field(description="image ids (img_…) of reference images; the first 3 are used", max_length=MAX_REFERENCE_IDS),
]
Side = Annotated[
    int,
    Field(
        description="pixels, a multiple of 16 from 64 to 2048 (1024 is usual)", ge=limits.MIN_SIDE, le=limits.MAX_SIDE
    ),
]
Seed = Annotated[int, Field(description="random seed for a reproducible image; -1 picks one", ge=-1)]


def _default_or_server_range(steps: int) -> int:
    """0 (the configured default) or what the render server accepts; 1 is neither."""
    if steps != 0 and not limits.MIN_STEPS <= steps <= limits.MAX_STEPS:
        raise ValueError(
            f"steps must be an integer from {limits.MIN_STEPS} to {limits.MAX_STEPS}, or 0 for the default"
        )
    return steps


# One integer type with the server's bounds (clients handle a plain type better than anyOf); `not 1` says the rest.
Steps = Annotated[
    int,
    Field(
        description=f"denoising steps, {limits.MIN_STEPS} to {limits.MAX_STEPS} (as the render server accepts); "
        "0 uses the default",
        ge=0,
        le=limits.MAX_STEPS,
        json_schema_extra={"not": {"const": 1}},
    ),
    AfterValidator(_default_or_server_range),
]


@dataclass(frozen=True)
class RenderOutcome:
    """A finished render and how many reference images it used."""

    result: RendererResult
    references: int


def _decode_reference(data: bytes, image_id: str) -> Any:
    from render_tools.imaging import decode_image

    return decode_image(data, what=f"image {image_id}", max_bytes=256 * 1024 * 1024)


async def run_render(services: Services, *args: Any) -> mcp_types.CallToolResult:
    """The tool's result; an image store that is down or unwritable is a clear error result."""
    from safe_io.image_store import ImageStoreUnavailable

    try:
        return await _run_render(services, *args)
    except ImageStoreUnavailable as exc:
        return error_result(f"render failed: {exc}")


async def _run_render(
    services: Services,
    prompt: str,
    reference_image_ids: list[str],
    width: int,
    height: int,
    seed: int,
    steps: int,
) -> mcp_types.CallToolResult:
    """Refuse what cannot run, read the references, render, store: each stage returns early with its error."""
    refusal = await _refusal(services, prompt, reference_image_ids)
    if refusal is not None:
        return error_result(refusal)
    used_ids = reference_image_ids[:USED_REFERENCES]
    references = await _read_references(services, used_ids)
    if isinstance(references, str):
        return error_result(references)
    rendered = await _render(services, prompt, references, width, height, seed, steps)
    if isinstance(rendered, str):
        return error_result(rendered)
    return await _stored_result(services, prompt, used_ids, rendered)


async def _refusal(services: Services, prompt: str, reference_image_ids: list[str]) -> str | None:
    """Why this call cannot render (no renderer, an empty prompt, too many or unknown unused ids), before any work."""
    if services.renderer is None:
        return "render is not available on this server: no renderer is configured"
    if not prompt.strip():  # the schema allows whitespace; refused here, before the references are read
        return "prompt must not be empty"
    if len(reference_image_ids) > MAX_REFERENCE_IDS:
        return f"at most {MAX_REFERENCE_IDS} reference_image_ids are accepted; the first {USED_REFERENCES} are used"
    for image_id in reference_image_ids[USED_REFERENCES:]:  # unused, but a wrong id is still worth telling
        if not await services.images.contains(image_id):
            return f"unknown image id {image_id!r}: use ids returned by image_search or render"
    return None


async def _read_references(services: Services, image_ids: list[str]) -> list[Image.Image] | str:
    """The decoded reference images, or the error of the first id that is unknown or not a usable image."""
    from render_tools.base import InvalidRenderRequest
    from safe_io.image_store import ImageNotFoundError

    references = []
    for image_id in image_ids:
        try:
            data, _ = await services.images.read_bytes(image_id)
        except ImageNotFoundError:
            return f"unknown image id {image_id!r}: use ids returned by image_search or render (img_ + 16 hex digits)"
        try:
            references.append(await anyio.to_thread.run_sync(_decode_reference, data, image_id))
        except InvalidRenderRequest as exc:
            return f"reference image {image_id} cannot be used: {exc}"
    return references


async def _render(
    services: Services,
    prompt: str,
    references: list[Image.Image],
    width: int,
    height: int,
    seed: int,
    steps: int,
) -> RenderOutcome | str:
    """Build the request (checked once, by its construction) and render it; a failure is its message."""
    from render_tools.base import InvalidRenderRequest, RenderError, RenderRequest

    render_settings = services.settings.render
    renderer = services.renderer
    if renderer is None:  # opened services can lose no renderer between stages; mypy cannot know
        return "render is not available on this server: no renderer is configured"
    try:
        request = RenderRequest(
            prompt=prompt,
            reference_images=tuple(references),
            width=width,
            height=height,
            seed=None if seed < 0 else seed,
            steps=steps if steps > 0 else render_settings.steps,
            true_cfg_scale=render_settings.true_cfg_scale,
        )
        return RenderOutcome(await renderer.render(request), len(references))
    except InvalidRenderRequest as exc:
        return f"invalid render request: {exc}"
    except RenderError as exc:
        return f"render failed: {exc}"
    except Exception as exc:
        logger.exception("render failed unexpectedly")
        return f"render failed: internal error ({type(exc).__name__})"


async def _stored_result(
    services: Services, prompt: str, used_ids: list[str], rendered: RenderOutcome
) -> mcp_types.CallToolResult:
    """Store the image (PNG, off the event loop) and answer with its id, a thumbnail and its URI."""
    from gen_searcher_core.imaging import png_bytes

    result = rendered.result
    meta: dict[str, Any] = {
        "source": "render",
        "prompt": prompt[:1000],
        "seed": result.seed,
        "model": result.model,
        "reference_image_ids": list(used_ids),
    }
    png = await anyio.to_thread.run_sync(png_bytes, result.image)  # encoding 1024x1024 takes a while: off the loop
    stored = await services.images.put(png, "image/png", meta)
    thumbnail = await services.images.thumbnail(stored.id)
    structured = RenderResult(
        id=stored.id,
        width=stored.width,
        height=stored.height,
        uri=stored.uri,
        seed=result.seed,
        elapsed_s=round(result.elapsed_s, 3),
    )
    used = rendered.references
    text = (
        f"Rendered {stored.id} ({stored.width}x{stored.height}, seed {result.seed}, "
        f"{used} reference image{'s' if used != 1 else ''}, {result.elapsed_s:.1f} s). "
        f"Full image: the resource {stored.uri} (resources/read)"
    )
    # No resource_link block: LangChain's MCP adapter turns one into an image (or file) block whose
    # image:// URL model providers then try, and fail, to fetch. The thumbnail is inline; the
    # full image's URI is in the text and in structuredContent.uri, readable with resources/read.
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=text), jpeg_content(thumbnail)],
        structured_content=structured.model_dump(),
    )


def unavailable(render_settings: RenderSettings) -> dict[str, str]:
    """``{"render": reason}`` when the ``[render]`` section gives no renderer (for ``gen-searcher tools``)."""
    from render_tools.factory import unavailable_reason

    reason = unavailable_reason(render_settings)
    return {"render": reason} if reason else {}


async def with_progress(renderer: Any, ctx: Context, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``, sending an MCP progress notification every few seconds until it ends.

    While the model still loads (it loads in the background after the server
    starts) the message says so; clients that reset their request timeout on
    progress (the TypeScript SDK's ``resetTimeoutOnProgress``) keep waiting.
    """
    outcome: list[T] = []

    async def report() -> None:
        started = anyio.current_time()
        beat = 0
        while True:
            beat += 1
            elapsed = anyio.current_time() - started
            loading = getattr(renderer, "load_state", None) in ("idle", "loading")
            doing = "waiting for the render model to load" if loading else "rendering"
            try:
                await ctx.report_progress(beat, None, f"{doing} ({elapsed:.0f} s)")
            except Exception:  # a client that cannot take notifications still gets its result
                logger.debug("progress notification failed", exc_info=True)
            await anyio.sleep(PROGRESS_EVERY_S)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(report)
            outcome.append(await work())
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the work's own error, unwrapped
        raise first_leaf(group) from None
    return outcome[0]


def register(server: MCPServer, services: Services) -> None:
    """Add ``render`` when a renderer is configured; otherwise offer nothing.

    The renderer itself may still be opening (the stdio server opens services
    after it answers ``initialize``), so the settings decide.
    """
    if getattr(services, "renderer", None) is None and unavailable(services.settings.render):
        return

    async def render(
        prompt: Prompt,
        reference_image_ids: ReferenceIds = [],  # noqa: B006  (pydantic copies defaults)
        width: Side = 1024,
        height: Side = 1024,
        seed: Seed = -1,
        steps: Steps = 0,
        ctx: Context | None = None,
    ) -> Annotated[mcp_types.CallToolResult, RenderResult]:
        def work() -> Awaitable[mcp_types.CallToolResult]:
            return run_render(services, prompt, list(reference_image_ids), width, height, seed, steps)

        if ctx is None:
            return await work()
        return await with_progress(services.renderer, ctx, work)

    server.add_tool(
        render,
        name="render",
        title="Render an image",
        description=DESCRIPTION,
        annotations=mcp_types.ToolAnnotations(read_only_hint=False, open_world_hint=False, idempotent_hint=False),
    )
