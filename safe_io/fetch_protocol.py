"""The ``Fetcher`` seam: what the browse service needs from anything that reads a URL.

Shipped fetchers (the guarded httpx ``safe_io.fetcher.GuardedFetcher`` and the ones in
``search_tools.fetchers``) and plugins implement this protocol; they return a
``FetchedPage`` that extraction turns into text. Data and protocol only: no I/O here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class FetchedPage:
    """A fetched document: final URL after redirects, media type and the (capped) body."""

    url: str
    status: int
    media_type: str  # lower case, no parameters; "" when the server sent none
    charset: str | None
    body: bytes
    redirects: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    fetched_with: str = ""  # which fetcher produced the body ("direct", "browser", "jina"...); "" = not said


@runtime_checkable
class Fetcher(Protocol):
    """Reads one URL under the server's guards.

    ``accept``: media types the caller can use (others may be refused before the
    body is read); ``max_bytes``: a tighter body cap than the fetcher's own.
    Failures raise ``safe_io.fetcher.FetchError`` subclasses with messages
    meant for the caller.
    """

    @property
    def guard_key(self) -> str:
        """The settings that decide what this fetcher may read, for cache keys (a page read under a
        looser guard is never served under a stricter one)."""
        ...

    async def fetch(
        self,
        url: str,
        *,
        accept: Collection[str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchedPage: ...
