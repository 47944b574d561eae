"""Turn a fetched document into readable text: HTML (trafilatura, markdown), plain text, PDF (pypdf).

Parsing is CPU work, so it runs in a worker thread.
"""

from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass
from typing import Any

import anyio

from search_tools.fetch import FetchedPage, UnsupportedContentType

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
SUPPORTED_TYPES = HTML_TYPES | TEXT_TYPES | PDF_TYPES
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class ExtractionError(ValueError):
    """The document could not be turned into text; the message says why."""


@dataclass(frozen=True)
class ExtractedPage:
    url: str
    title: str | None
    text: str
    date: str | None = None
    media_type: str = "text/html"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractedPage:
        return cls(**data)


def sniff_media_type(page: FetchedPage) -> str:
    """The declared media type, or a guess from the first bytes when none was declared."""
    if page.media_type and page.media_type != "application/octet-stream":
        return page.media_type
    head = page.body[:1024].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return "application/pdf"
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "text/html"
    if page.media_type:
        return page.media_type
    try:
        page.body[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


async def extract(page: FetchedPage) -> ExtractedPage:
    """Extract the main text of ``page``; raises ``UnsupportedContentType`` or ``ExtractionError``."""
    media_type = sniff_media_type(page)
    if media_type in HTML_TYPES:
        return await anyio.to_thread.run_sync(extract_html, _decoded(page), page.url)
    if media_type in TEXT_TYPES:
        return await anyio.to_thread.run_sync(extract_text, page.body, page.charset, page.url, media_type)
    if media_type in PDF_TYPES:
        return await anyio.to_thread.run_sync(extract_pdf, page.body, page.url)
    raise UnsupportedContentType(
        f"cannot read content of type {media_type or 'unknown'} at {page.url} (supported: HTML, plain text, PDF)"
    )


def _decoded(page: FetchedPage) -> bytes | str:
    """HTML as text when the server declared a charset Python knows; else bytes for trafilatura to sniff."""
    if page.charset:
        try:
            return page.body.decode(page.charset, errors="replace")
        except LookupError:
            pass
    return page.body


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_text(data: bytes, charset: str | None, url: str, media_type: str) -> ExtractedPage:
    """Plain text as is (line ends normalised, runs of blank lines collapsed)."""
    try:
        text = data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = data.decode("utf-8", errors="replace")
    return ExtractedPage(url, None, _tidy(text), None, media_type)


def extract_html(html: bytes | str, url: str) -> ExtractedPage:
    """Main text of an HTML page as markdown, with its title and date; boilerplate dropped.

    trafilatura's full metadata pass (authors, tags, licence...) costs several
    times the text extraction itself, so only the title and the date are read,
    from the page head and by htmldate's quick search.
    """
    import trafilatura  # heavy import, kept off the server start path

    options: dict[str, Any] = dict(
        url=url,
        include_comments=False,
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
    )
    doc = trafilatura.bare_extraction(html, fast=True, **options)
    text = (doc.text if doc is not None else "") or ""
    if not text.strip():  # short or unusual pages: the recall-oriented settings and fallbacks
        doc = trafilatura.bare_extraction(html, favor_recall=True, **options)
        text = (doc.text if doc is not None else "") or ""
    if not text.strip():
        _, text, _ = trafilatura.baseline(html)
    if not text.strip():
        raise ExtractionError(f"no readable text found at {url}")
    title, date = _title_and_date(html, url)
    return ExtractedPage(url, title, _tidy(text), date, "text/html")


def _title_and_date(html: bytes | str, url: str) -> tuple[str | None, str | None]:
    from htmldate import find_date
    from trafilatura import load_html
    from trafilatura.metadata import examine_meta, extract_title

    tree = load_html(html)
    if tree is None:
        head = html[:65536] if isinstance(html, bytes) else html[:65536].encode("utf-8", errors="replace")
        match = _TITLE.search(head)
        title = re.sub(r"\s+", " ", match.group(1).decode("utf-8", errors="replace")).strip() if match else None
        return title or None, None
    title = examine_meta(tree).title or extract_title(tree)
    try:
        date = find_date(tree, url=url, extensive_search=False, original_date=True)
    except Exception:  # htmldate is best effort; a page without a readable date has none
        date = None
    return (title or None), date


def extract_pdf(data: bytes, url: str) -> ExtractedPage:
    """Text of every page of a PDF, pages separated by blank lines."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError(f"the PDF at {url} is encrypted")
        pages = [(p.extract_text() or "").strip() for p in reader.pages]
        meta = reader.metadata
        title = str(meta.title).strip() if meta is not None and meta.title else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ExtractionError):
            raise
        raise ExtractionError(f"the PDF at {url} could not be read: {exc}") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise ExtractionError(f"the PDF at {url} contains no extractable text (scanned images?)")
    return ExtractedPage(url, title, _tidy(text), None, "application/pdf")
