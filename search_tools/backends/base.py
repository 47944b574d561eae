"""The search backend seam: result types, the protocol, and the one error type.

Every backend (shipped or plugin) returns :class:`WebHit` / :class:`ImageHit`
lists with positions 1..n and raises :class:`SearchBackendError` for every
failure, so the tool layer can report one query's error while others succeed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from gen_searcher_core import limits
from gen_searcher_core.errors import UserFacingError

Capability = Literal["web", "images"]
ErrorKind = Literal[
    "bad_request",  # the caller's query or k is invalid
    "auth",  # the provider rejected the credentials
    "rate_limited",  # 429 after retries, or a Retry-After too long to wait for
    "unavailable",  # 5xx after retries, connection refused, index missing
    "timeout",  # the provider did not answer in time
    "bad_response",  # the provider answered something we cannot parse
    "unsupported",  # the backend lacks this capability
    "config",  # the backend is misconfigured (no key, no URL)
]

MAX_QUERY_CHARS = limits.MAX_QUERY_CHARS
MAX_K = limits.MAX_SEARCH_K


@dataclass(frozen=True)
class WebHit:
    title: str
    url: str
    snippet: str
    position: int
    date: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["date"] is None:
            del data["date"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebHit:
        return cls(
            title=data["title"],
            url=data["url"],
            snippet=data["snippet"],
            position=int(data["position"]),
            date=data.get("date"),
        )


@dataclass(frozen=True)
class ImageHit:
    image_url: str
    page_url: str
    title: str
    position: int
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageHit:
        return cls(
            image_url=data["image_url"],
            page_url=data["page_url"],
            title=data["title"],
            position=int(data["position"]),
            width=data.get("width"),
            height=data.get("height"),
            thumbnail_url=data.get("thumbnail_url"),
        )


#: Appended to "could not reach" errors: without a network, the local index is the way to search.
OFFLINE_HINT = (
    "offline? search a local index instead: gen-searcher index build PAGES_DIR --out index.db, then set "
    "GEN_SEARCHER_SEARCH__BACKEND=local and GEN_SEARCHER_SEARCH__INDEX=index.db (docs/search.md; "
    "gen-searcher demo runs one)"
)


class SearchBackendError(UserFacingError):
    """A search failed. The message names the backend and never contains a credential."""

    def __init__(self, backend: str, kind: ErrorKind, message: str) -> None:
        self.backend = backend
        self.kind = kind
        self.message = message
        if kind == "config":  # raised before any search ran: say what to fix, not that a search failed
            super().__init__(f"{backend} search backend is misconfigured: {message}")
        else:
            super().__init__(f"{backend} search failed ({kind}): {message}")


@runtime_checkable
class SearchBackend(Protocol):
    """What a search backend provides. Plugins implement this shape."""

    name: str
    capabilities: frozenset[str]

    async def search(self, query: str, k: int) -> list[WebHit]: ...

    async def image_search(self, query: str, k: int) -> list[ImageHit]: ...

    async def aclose(self) -> None: ...


class InvalidQuery(UserFacingError, ValueError):
    """A query that is not a string, is empty, or is too long; the message says which."""


class SearchQuery(str):
    """A search query that is valid once constructed: whitespace collapsed, 1 to ``MAX_QUERY_CHARS`` characters.

    The search service builds it once from what a tool or an embedder gives;
    the backends and the cache key take it as it is (``check_request`` passes
    one through without checking it again).
    """

    __slots__ = ()

    def __new__(cls, text: object) -> SearchQuery:
        if isinstance(text, SearchQuery):
            return text
        if not isinstance(text, str):
            raise InvalidQuery(f"query must be a string, got {type(text).__name__}")
        collapsed = " ".join(text.split())
        if not collapsed:
            raise InvalidQuery("query is empty")
        if len(collapsed) > MAX_QUERY_CHARS:
            raise InvalidQuery(f"query is longer than {MAX_QUERY_CHARS} characters")
        return super().__new__(cls, collapsed)

    @property
    def cache_form(self) -> str:
        """Case- and width-insensitive form (NFKC, casefolded) used in cache keys."""
        return " ".join(unicodedata.normalize("NFKC", self).casefold().split())


def check_request(backend: str, query: str, k: int) -> SearchQuery:
    """The query as a :class:`SearchQuery` (built here unless it already is one), with ``k`` checked.

    Every backend calls it first, so one called directly (an embedder, the conformance kit) refuses bad
    input the same way; from the search service it receives a ``SearchQuery`` and checks only ``k``.
    """
    try:
        valid = SearchQuery(query)
    except InvalidQuery as exc:
        raise SearchBackendError(backend, "bad_request", str(exc)) from None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise SearchBackendError(backend, "bad_request", f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return valid


def unsupported(backend: str, capability: Capability) -> SearchBackendError:
    what = "image search" if capability == "images" else "web search"
    return SearchBackendError(backend, "unsupported", f"this backend does not support {what}")
