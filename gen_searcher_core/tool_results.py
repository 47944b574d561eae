"""The structured results of the MCP tools, as Pydantic models (data only).

The server declares each tool's ``outputSchema`` from these models and every
successful result validates against it; clients (``policy``, the verl bridge)
read results through the same models instead of picking dicts apart. Error
results (``isError``) carry only text and are not described here.

The schema is the models' *serialization* schema: every field the server always
sends is required there. Reading is lenient where a field has a default, so a
client still gets the ids out of a result from a server that sends less.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Result(BaseModel):
    # Extra keys are tolerated (a newer server may add fields); nothing is ever removed.
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        json_schema_mode_override="serialization",
        json_schema_serialization_defaults_required=True,
    )


class SearchHit(_Result):
    """One web search hit."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)  # "date" is sent only when known

    title: str
    url: str
    snippet: str
    position: int = Field(description="1-based rank within this query's hits")
    date: str | None = Field(default=None, description="publication date when the backend knows it (else absent)")


class QueryResult(_Result):
    """The hits of one query, or the error that query met (the other queries still answer)."""

    query: str
    hits: list[SearchHit]
    error: str | None = Field(description="why this query failed; null when it succeeded")


class SearchResult(_Result):
    """``search``: one entry per query, in the order asked."""

    results: list[QueryResult]


class FoundImage(_Result):
    """One stored image found by ``image_search``; the full image is the resource ``image://{id}``."""

    id: str = Field(description="image-store id (img_ + 16 hex digits)")
    title: str = ""
    page_url: str = ""
    source_url: str = ""
    width: int = 0
    height: int = 0


class ImageSearchResult(_Result):
    """``image_search``: the stored images, in the order of the thumbnails that follow the text."""

    query: str = ""
    images: list[FoundImage]


class BrowseResult(_Result):
    """``browse``: a summary (or a slice of the extracted text) of one page for a goal."""

    # "fetched_with" is optional: browse results cached before it existed are served without it.
    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    url: str = Field(description="the final URL after redirects")
    title: str | None
    content: str
    summarized: bool = Field(description="true when content is a model's summary, false for the page's own text")
    offset: int
    next_offset: int | None = Field(description="call browse again with this offset to continue; null at the end")
    total_chars: int
    fetched_with: str | None = Field(
        default=None, description="which fetcher read the page: direct, browser, jina or a plugin's name"
    )
    likely_js_shell: bool | None = Field(
        default=None,
        description="true when the page was read without a browser and its text looks drawn by scripts: the "
        "content may miss the article (a server with fetch backend auto or browser reads it)",
    )


class RenderResult(_Result):
    """``render``: the new image in the store."""

    id: str = Field(description="image-store id of the rendered PNG")
    width: int = 0
    height: int = 0
    uri: str = Field(default="", description="resource URI of the full image (image://{id})")
    seed: int = 0
    elapsed_s: float = 0.0


ToolOutput: TypeAlias = SearchResult | ImageSearchResult | BrowseResult | RenderResult

#: The output model of each shipped tool, by tool name.
OUTPUT_MODELS: dict[str, type[ToolOutput]] = {
    "search": SearchResult,
    "image_search": ImageSearchResult,
    "browse": BrowseResult,
    "render": RenderResult,
}


def parse_output(tool: str, structured: Any) -> ToolOutput | None:
    """``structured`` read as ``tool``'s output model; None for other tools or content that does not fit
    (a result from a server that does not follow the contract)."""
    model = OUTPUT_MODELS.get(tool)
    if model is None or not isinstance(structured, dict):
        return None
    try:
        return model.model_validate(structured)
    except ValidationError:
        return None
