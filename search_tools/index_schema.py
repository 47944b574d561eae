"""The local index's file format, shared by its builder and its reader: tables, version, BM25 weights."""

from __future__ import annotations

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIRTUAL TABLE docs USING fts5(
    url UNINDEXED, title, text, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE images USING fts5(
    image_url UNINDEXED, page_url UNINDEXED, width UNINDEXED, height UNINDEXED,
    alt, caption, context, page_title, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# BM25 column weights: a match in the title counts more than one in the body.
DOC_WEIGHTS = "0.0, 8.0, 1.0"  # url (unindexed), title, text
IMAGE_WEIGHTS = (
    "0.0, 0.0, 0.0, 0.0, 6.0, 6.0, 2.0, 1.0"  # image_url, page_url, width, height, alt, caption, context, page_title
)


def collapse_whitespace(text: str) -> str:
    """``text`` with every run of whitespace made one space."""
    return " ".join(text.split())
