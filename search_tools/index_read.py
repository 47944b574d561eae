"""Querying the local full-text index (SQLite FTS5, BM25). ``LocalIndex`` methods block: run them on a worker thread."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from gen_searcher_core.errors import UserFacingError
from search_tools.backends.base import ImageHit, WebHit
from search_tools.index_schema import DOC_WEIGHTS, IMAGE_WEIGHTS, collapse_whitespace

_TOKEN = re.compile(r"\w+", re.UNICODE)
_MAX_QUERY_TERMS = 32


class IndexNotFoundError(UserFacingError):
    """The index file does not exist or is not a Gen-Searcher index."""


def fts_query(text: str) -> str | None:
    """Turn free text into a safe FTS5 query: each word quoted, OR-ed (BM25 rewards more matches).

    Operators and punctuation in user input ("C++ OR (") are never interpreted.
    Returns None when the text has no searchable word.
    """
    terms = list(dict.fromkeys(token.lower() for token in _TOKEN.findall(text)))[:_MAX_QUERY_TERMS]
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)


class LocalIndex:
    """Read-only queries over an index file. Methods block; call them from a worker thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise IndexNotFoundError(
                f"local search index not found: {self.path}"
                " (build one with `gen-searcher index build SRC_DIR --out FILE.db`)"
            )
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError:
            raise IndexNotFoundError(f"not a Gen-Searcher index: {self.path}") from None
        return conn

    def _fetch(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read-only query (a connection per call: safe from any worker thread)."""
        conn = self._connect()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def check(self) -> dict[str, str]:
        """The index's metadata; raises IndexNotFoundError for a missing or foreign file."""
        return dict(self._fetch("SELECT key, value FROM meta"))

    def search(self, query: str, k: int) -> list[WebHit]:
        match = fts_query(query)
        if match is None:
            return []
        # Rank first, then build snippets for the top k only (SQLite would otherwise
        # compute a snippet for every matching row before sorting).
        rows = self._fetch(
            f"SELECT url, title, snippet(docs, 2, '', '', '…', 40), substr(text, 1, 300) FROM docs"
            f" WHERE docs MATCH ?1 AND rowid IN"
            f" (SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY bm25(docs, {DOC_WEIGHTS}) LIMIT ?2)"
            f" ORDER BY bm25(docs, {DOC_WEIGHTS})",
            (match, k),
        )
        hits = []
        for position, (url, title, snippet, text) in enumerate(rows, start=1):
            snippet = collapse_whitespace(snippet or "") or collapse_whitespace(text)
            hits.append(WebHit(title=title or url, url=url, snippet=snippet, position=position))
        return hits

    def image_search(self, query: str, k: int) -> list[ImageHit]:
        match = fts_query(query)
        if match is None:
            return []
        rows = self._fetch(
            f"SELECT image_url, page_url, width, height, alt, caption, page_title FROM images"
            f" WHERE images MATCH ? ORDER BY bm25(images, {IMAGE_WEIGHTS}) LIMIT ?",
            (match, k * 4),
        )
        hits: list[ImageHit] = []
        seen: set[str] = set()
        for image_url, page_url, width, height, alt, caption, page_title in rows:
            if image_url in seen:
                continue
            seen.add(image_url)
            hits.append(
                ImageHit(
                    image_url=image_url,
                    page_url=page_url,
                    title=caption or alt or page_title or image_url,
                    position=len(hits) + 1,
                    width=width,
                    height=height,
                )
            )
            if len(hits) == k:
                break
        return hits
