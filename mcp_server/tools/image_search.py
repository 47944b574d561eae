"""The ``image_search`` tool and the ``image://{id}`` resource.

Candidates come from the search backend; they are downloaded through the safe
fetcher, validated and stored; callers get ids, sources and small JPEG
thumbnails, while full images stay in the store (``image://{id}``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import anyio
import mcp_types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import Field, StringConstraints

from gen_searcher_core import limits
from gen_searcher_core.errors import describe_failure
from gen_searcher_core.imaging import as_png
from gen_searcher_core.tool_results import ImageSearchResult
from mcp_server.services import Services
from mcp_server.tools.memo import ResultMemo
from mcp_server.tools.results import error_result, jpeg_content, resource_not_found
from mcp_server.tools.thumbnails import thumbnails_within_budget

logger = logging.getLogger(__name__)

MAX_TOP_K = limits.MAX_TOP_K
DEFAULT_TOP_K = 5
MAX_QUERY_CHARS = limits.MAX_QUERY_CHARS
FIRST_ROUND_FACTOR = 2  # candidates asked for per wanted image
SECOND_ROUND_FACTOR = 4  # when too few survive, ask once for this many per wanted image
MAX_CANDIDATES = 40
MAX_REASONS_SHOWN = 3  # why candidates were dropped, shown when none survived
MAX_REASON_CHARS = 300
MEMO_TTL_S = 60.0  # repeated calls within this answer from memory
MEMO_MAX_BYTES = 64 * 1024 * 1024
RESULT_RESERVE_BYTES = 512  # of the budget, for what travels around the result (JSON-RPC envelope, _meta)

DESCRIPTION = (
    "Find reference photos on the web. Returns up to top_k (1 to 10) images, each with a stable id "
    "(img_…), title, page_url, source_url, width and height, plus a small JPEG thumbnail of each in "
    "the same order. Full images are readable as the resource image://{id}."
)

Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS),
    Field(description=f"what to find pictures of, at most {MAX_QUERY_CHARS} characters"),
]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description=f"number of images, 1 to {MAX_TOP_K}")]


def _describe_search_failure(exc: BaseException) -> str:
    return f"image search failed: {describe_failure(exc, logger=logger)}"


def render_text(query: str, images: list[dict[str, Any]], dropped: list[str]) -> str:
    lines = [f'## Images for "{query}"']
    if not images:
        if not dropped:
            lines.append("No usable images found.")
        else:
            noun = "candidate" if len(dropped) == 1 else "candidates"
            lines.append(f"No usable images found ({len(dropped)} {noun} could not be used):")
            lines += [f"- {reason[:MAX_REASON_CHARS]}" for reason in dropped[:MAX_REASONS_SHOWN]]
            if len(dropped) > MAX_REASONS_SHOWN:
                lines.append(f"- ... and {len(dropped) - MAX_REASONS_SHOWN} more")
    for n, image in enumerate(images, 1):
        title = image["title"] or "(untitled)"
        lines.append(f"{n}. {image['id']}: {title} ({image['width']}x{image['height']})")
        if image["page_url"]:
            lines.append(f"   page: {image['page_url']}")
    if images:
        lines.append("The thumbnails follow in the same order; full images: image://{id}.")
    return "\n".join(lines)


async def run_image_search(services: Services, query: str, top_k: int) -> mcp_types.CallToolResult:
    """The tool's result; an image store that is down or unwritable is a clear error result."""
    from gen_searcher_core.errors import first_leaf
    from safe_io.image_store import ImageStoreUnavailable

    try:
        return await _run_image_search(services, query, top_k)
    except ImageStoreUnavailable as exc:
        return error_result(f"image search failed: {exc}")
    except BaseExceptionGroup as group:  # from the thumbnails' task group
        unavailable, _ = group.split(ImageStoreUnavailable)
        if unavailable is None:
            raise
        return error_result(f"image search failed: {first_leaf(unavailable)}")


async def _run_image_search(services: Services, query: str, top_k: int) -> mcp_types.CallToolResult:
    from search_tools.image_fetch import ImageCollector

    search = getattr(services, "search", None)
    if search is None or services.fetcher is None:
        return error_result("image_search is not available on this server")
    collector = ImageCollector.from_settings(services.fetcher, services.images, services.settings.images)
    first_k = min(top_k * FIRST_ROUND_FACTOR, MAX_CANDIDATES)
    try:
        hits = await search.image_search(query, first_k)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a tool error; internal ones are logged
        return error_result(_describe_search_failure(exc))
    found, dropped = await collector.collect(hits, top_k)
    if len(found) < top_k and len(hits) >= first_k:  # the backend may have more: ask once more
        try:
            more = await search.image_search(query, min(top_k * SECOND_ROUND_FACTOR, MAX_CANDIDATES))
        except Exception as exc:  # noqa: BLE001 - the first round's images still answer
            logger.warning("second image search round failed: %s", _describe_search_failure(exc))
            more = []
        tried = {hit.image_url for hit in hits}
        fresh = [hit for hit in more if hit.image_url not in tried]
        extra, dropped_more = await collector.collect(
            fresh, top_k - len(found), exclude_ids={f.image.id for f in found}
        )
        found += extra
        dropped += dropped_more
    images = [f.to_dict() for f in found]
    image_settings = services.settings.images
    text = render_text(query, images, dropped)
    structured = {"query": query, "images": images}
    # The budget covers the whole result: what the text and structured content take is not for thumbnails.
    frame = _result_bytes(text + _left_out_note(len(images)), structured, len(images)) + RESULT_RESERVE_BYTES
    thumbnails = await thumbnails_within_budget(
        services.images,
        [f.image.id for f in found],
        image_settings.thumbnail_side,
        image_settings.thumbnail_budget_bytes - frame,
    )
    if len(thumbnails) < len(images):
        text += _left_out_note(len(images) - len(thumbnails))
    content: list[Any] = [mcp_types.TextContent(type="text", text=text)]
    content += [jpeg_content(thumb) for thumb in thumbnails]
    return mcp_types.CallToolResult(content=content, structured_content=structured)


def _left_out_note(left_out: int) -> str:
    return f"\n(Thumbnails of the last {left_out} images are left out to keep the result small.)"


def _result_bytes(text: str, structured: dict[str, Any], thumbnails: int) -> int:
    """The serialized size of the result with ``thumbnails`` empty image blocks (each thumbnail adds its base64)."""
    frame = mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text=text), *(jpeg_content(b"") for _ in range(thumbnails))],
        structured_content=structured,
    )
    return len(frame.model_dump_json(by_alias=True, exclude_none=True).encode())


def _result_size(result: mcp_types.CallToolResult) -> int:
    return sum(len(getattr(block, "data", "") or getattr(block, "text", "")) for block in result.content)


def register(server: MCPServer, services: Services) -> None:
    # A repeated call within MEMO_TTL_S answers from memory: rebuilding it costs ~25 image-store
    # operations (source lookups, records, thumbnails), each a worker-thread hop.
    memo: ResultMemo[mcp_types.CallToolResult] = ResultMemo(ttl_s=MEMO_TTL_S, max_bytes=MEMO_MAX_BYTES)

    async def image_search(
        query: Query, top_k: TopK = DEFAULT_TOP_K
    ) -> Annotated[mcp_types.CallToolResult, ImageSearchResult]:
        settings = services.settings
        if settings.cache.mode == "off":  # no caching asked for: every call searches afresh
            return await run_image_search(services, query, top_k)
        key = (query, top_k, settings.images.thumbnail_side, settings.images.thumbnail_budget_bytes)
        result = memo.get(key)
        if result is None:
            result = await run_image_search(services, query, top_k)
            if not result.is_error:
                memo.put(key, result, _result_size(result))
        return result

    server.add_tool(
        image_search,
        name="image_search",
        title="Image search",
        description=DESCRIPTION,
        annotations=mcp_types.ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )

    @server.resource(
        "image://{id}",
        name="image",
        title="Stored image",
        description="A full-size image from the image store (PNG), by its id (img_ + 16 hex digits).",
        mime_type="image/png",
    )
    async def read_image(id: str, ctx: Context) -> bytes:
        from safe_io.image_store import ImageNotFoundError, ImageStoreUnavailable

        try:
            data, media_type = await services.images.read_bytes(id)
        except ImageNotFoundError as exc:
            raise resource_not_found(str(exc), f"image://{id}", ctx.protocol_version) from None
        except ImageStoreUnavailable as exc:
            raise ResourceError(str(exc)) from None
        return await anyio.to_thread.run_sync(as_png, data, media_type)
