"""Turning a provider's result rows into ``WebHit``/``ImageHit`` lists, the same way for every backend.

Providers differ only in field names; the rules are shared: rows that are not
objects or lack a usable URL are skipped, markup is stripped from titles and
snippets, sizes must be positive integers, positions run 1..n over the kept
rows, and at most ``k`` hits come back.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from search_tools.backends.base import ImageHit, WebHit

_TAG = re.compile(r"<[^>]+>")


def strip_html(text: Any) -> str:
    """Provider snippets often carry <strong> markup and entities; return plain text."""
    if not text or not isinstance(text, str):
        return ""
    return " ".join(html.unescape(_TAG.sub("", text)).split())


def as_int(value: Any) -> int | None:
    """A positive integer from a provider field, else None."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def text_field(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def web_hits(
    rows: Iterable[Any],
    k: int,
    *,
    url: str,
    snippet: str,
    title: str = "title",
    dates: Sequence[str] = (),
) -> list[WebHit]:
    """Web hits from rows (dicts) whose fields are named ``url``, ``title``, ``snippet``; the
    date is the first non-empty field of ``dates``."""
    hits: list[WebHit] = []
    for row in rows:
        if not isinstance(row, dict) or (link := text_field(row.get(url))) is None:
            continue
        date = next((value for name in dates if (value := text_field(row.get(name)))), None)
        hits.append(
            WebHit(
                title=strip_html(row.get(title)) or link,
                url=link,
                snippet=strip_html(row.get(snippet)),
                position=len(hits) + 1,
                date=date,
            )
        )
        if len(hits) == k:
            break
    return hits


# One image row, as extracted by a backend: image_url, page_url, title, width, height, thumbnail_url.
ImageFields = dict[str, Any]


def image_hits(
    rows: Iterable[Any], k: int, extract: Callable[[dict[str, Any]], ImageFields] | Mapping[str, str]
) -> list[ImageHit]:
    """Image hits from rows. ``extract`` maps one row (a dict) to raw ``ImageFields``; for flat
    rows it can simply name the row's key of each field (``{"image_url": "imageUrl", ...}``).

    Rows without an image URL and repeats of an image URL are skipped; the page
    URL falls back to the image URL.
    """
    hits: list[ImageHit] = []
    seen: set[str] = set()
    for row in rows:
        if not isinstance(row, dict):
            continue
        fields = {name: row.get(key) for name, key in extract.items()} if isinstance(extract, Mapping) else extract(row)
        image_url = text_field(fields.get("image_url"))
        if image_url is None or image_url in seen:
            continue
        seen.add(image_url)
        hits.append(
            ImageHit(
                image_url=image_url,
                page_url=text_field(fields.get("page_url")) or image_url,
                title=strip_html(fields.get("title")),
                position=len(hits) + 1,
                width=as_int(fields.get("width")),
                height=as_int(fields.get("height")),
                thumbnail_url=text_field(fields.get("thumbnail_url")),
            )
        )
        if len(hits) == k:
            break
    return hits
