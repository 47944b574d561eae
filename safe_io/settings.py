"""The settings sections of the guarded fetcher and the image store (``fetch``, ``images``).

They live here, below search and render, because both areas fetch pages and
images and keep images in one store; ``search_tools.settings`` re-exports them
and ``mcp_server.settings`` composes them into the server's tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, field_validator

USER_AGENT = "Gen-Searcher/0.1 (+https://github.com/gen-searcher/gen-searcher; search-grounded image generation bot)"


def default_cache_dir() -> Path:
    """The per-user cache folder (``~/.cache/gen-searcher`` on Linux)."""
    return Path(platformdirs.user_cache_dir("gen-searcher"))


class FetchSettings(BaseModel):
    allow_private_networks: bool = Field(False, description="let browse and image downloads reach private addresses")
    max_bytes: int = Field(5 * 1024 * 1024, description="largest response body read")
    timeout_s: float = Field(20.0, description="time limit of one fetch")
    max_redirects: int = Field(5, description="redirects followed per fetch")
    respect_robots: bool = Field(True, description="obey robots.txt")
    per_host_concurrency: int = Field(4, description="concurrent fetches per host")
    user_agent: str = Field(USER_AGENT, description="User-Agent of every outgoing request")
    allowed_addresses: list[str] = Field(
        default_factory=list,
        description="internal networks reachable despite the guard: '10.1.2.0/24', '127.0.0.1:8080', '[::1]:8080'",
    )
    robots_ttl_s: float = Field(3600.0, description="how long a robots.txt is cached")
    extract_timeout_s: float = Field(
        30.0, description="time limit of extracting one document's text (a worker process; stopped when over)"
    )
    extract_workers: int = Field(
        0,
        ge=0,
        description="documents extracted at once, each in its own worker process (0: one per core, less one "
        "for the server process, at least one)",
    )
    extract_max_pdf_pages: int = Field(100, description="pages read from one PDF; the text says when more were left")
    extract_max_chars: int = Field(1_000_000, description="characters of text kept from one document")
    extract_memory_mb: int = Field(
        1024, description="address-space limit of one extraction worker (a document needing more fails alone)"
    )
    robots_timeout_s: float = Field(
        5.0,
        description="time limit of one robots.txt read (at most half of timeout_s); a robots.txt that does not "
        "answer in time disallows its site for a few minutes instead of costing every fetch the full deadline",
    )
    # Fetchers (search_tools.fetchers): how browse reads a page.
    backend: str = Field("direct", description="direct | browser | auto | jina | a plugin's name (browse's fetcher)")
    browser_path: str | None = Field(None, description="Chromium executable of the browser fetcher (default: PATH)")
    browser_contexts: int = Field(4, ge=1, description="pages the browser renders at once (one context each)")
    browser_page_timeout_s: float = Field(20.0, gt=0, description="time limit of one page render, settling included")
    browser_settle_s: float = Field(
        5.0, gt=0, description="longest wait for a rendered page to settle (network quiet, text present)"
    )
    browser_max_bytes: int = Field(
        20 * 1024 * 1024, description="bytes one rendered page may download (scripts, XHR...), document included"
    )
    browser_js_heap_mb: int = Field(512, description="JavaScript heap limit of a page (a runaway page crashes alone)")
    browser_renderer_memory_mb: int = Field(
        1024,
        ge=64,
        description="resident memory of one renderer process (typed arrays, canvases and WASM included); a "
        "renderer over it is killed and its page fails alone",
    )
    browser_max_renderers: int = Field(
        0, ge=0, description="renderer processes at once; the newest beyond it are killed (0: 2 x contexts + 2)"
    )
    browser_scrolls: int = Field(
        2, ge=0, description="times the browser scrolls to the bottom of a page that keeps growing (endless pages)"
    )
    browser_scroll_screens: int = Field(
        12, ge=0, description="viewport-sized scroll steps per page, so sections that load when seen load"
    )
    browser_subresources: Literal["all", "same-site", "none"] = Field(
        "same-site",
        description="requests a rendered page may make: all, same-site (its own site only) or none (the document "
        "alone); known trackers never",
    )
    browser_block: list[str] = Field(
        default_factory=lambda: ["image", "media", "font"],
        description="resource types the browser does not download",
    )
    auto_min_chars: int = Field(
        200, description="auto: a page whose main text is shorter and which has scripts is rendered in the browser"
    )
    jina_url: str = Field("https://r.jina.ai", description="the jina fetcher's reader endpoint (key: JINA_API_KEY)")
    jina_timeout_s: float = Field(60.0, gt=0, description="time limit of one jina reader request")


class ImageSettings(BaseModel):
    """The image store: a local folder (default) or, with ``url``, a shared S3-compatible bucket.

    The S3 fields override the standard AWS variables (``AWS_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), which
    apply when they are unset. See docs/scaling.md.
    """

    dir: Path = Field(default_factory=lambda: default_cache_dir() / "images", description="image store folder")
    max_total_bytes: int = Field(2 * 1024**3, description="store size; least recently used images go first")
    max_pixels: int = Field(40_000_000, description="larger images are refused (decompression bombs)")
    min_side: int = Field(64, description="smaller images are skipped (icons, trackers)")
    thumbnail_side: int = Field(512, description="longest side of the thumbnails tools return")
    thumbnail_budget_bytes: int = Field(
        512 * 1024, gt=0, description="image_search: all thumbnails of one call together (base64), shrunk to fit"
    )
    reuse_sources_s: float = Field(
        7 * 24 * 3600.0, description="image_search reuses what a source URL gave for this long (0: always download)"
    )
    url: str | None = Field(None, description="s3://bucket/prefix: one image store shared by every replica")
    endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, Ceph, R2...); default AWS_ENDPOINT_URL")
    region: str | None = Field(None, description="S3 region; default AWS_REGION, else us-east-1")
    access_key_id: SecretStr | None = Field(None, description="S3 access key; default AWS_ACCESS_KEY_ID")
    secret_access_key: SecretStr | None = Field(None, description="S3 secret key; default AWS_SECRET_ACCESS_KEY")
    session_token: SecretStr | None = Field(None, description="S3 session token; default AWS_SESSION_TOKEN")
    timeout_s: float = Field(10.0, description="time limit of one S3 request (a call gives up after 3x this)")
    cache_dir: Path = Field(
        default_factory=lambda: default_cache_dir() / "images-cache", description="local read-through cache (S3)"
    )
    cache_max_bytes: int = Field(1024**3, description="size of the local read-through cache (S3); 0 turns it off")
    max_image_bytes: int = Field(
        64 * 1024**2,
        gt=0,
        description="largest image the S3 store writes or reads; a larger object under an id is refused unread",
    )

    @field_validator("url", "endpoint_url", "region", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value
