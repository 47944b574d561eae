"""Turn a fetched document into readable text: HTML (trafilatura, markdown), plain text, PDF (pypdf).

HTML and PDF parsing is heavy CPU work in C extensions, so it runs in a worker
process of an :class:`~search_tools.extract_pool.ExtractionPool` (a deadline per
document; a crashed or hung worker fails only its own call). Plain text is only
decoded, in a thread. Every document keeps at most ``max_chars`` characters and
a PDF at most ``max_pdf_pages`` pages; a cut is said at the end of the text.
"""

from __future__ import annotations

import io
import re
from dataclasses import asdict, dataclass
from typing import Any

import anyio

from gen_searcher_core.errors import UserFacingError
from safe_io.fetch_protocol import FetchedPage
from safe_io.fetcher import UnsupportedContentType
from search_tools.extract_pool import ExtractionPool, ExtractLimits, PoolFailure
from search_tools.js_shell import SHELL_TEXT, shell_signal_of_tree

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
SUPPORTED_TYPES = HTML_TYPES | TEXT_TYPES | PDF_TYPES
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class ExtractionError(UserFacingError, ValueError):
    """The document could not be turned into text; the message says why."""


@dataclass(frozen=True)
class ExtractedPage:
    url: str
    title: str | None
    text: str
    date: str | None = None
    media_type: str = "text/html"
    fetched_with: str = ""  # the fetcher that read the page (direct, browser, jina...), set by the browse service
    js_shell: str | None = None  # HTML whose text scripts draw: why it looks so (search_tools.js_shell)

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


async def extract(page: FetchedPage, pool: ExtractionPool | None = None) -> ExtractedPage:
    """Extract the main text of ``page``; raises ``UnsupportedContentType`` or ``ExtractionError``.

    ``pool``: the server's extraction pool (its limits and worker count); a
    private one with the default limits when omitted.
    """
    pool = pool or ExtractionPool()
    limits = pool.limits
    media_type = sniff_media_type(page)
    if media_type in TEXT_TYPES:
        return await anyio.to_thread.run_sync(
            extract_text, page.body, page.charset, page.url, media_type, limits.max_chars
        )
    if media_type not in HTML_TYPES | PDF_TYPES:
        raise UnsupportedContentType(
            f"cannot read content of type {media_type or 'unknown'} at {page.url} (supported: HTML, plain text, PDF)"
        )
    try:
        if media_type in HTML_TYPES:
            return await pool.run(
                extract_html_bytes,
                page.body,
                page.charset,
                page.url,
                limits.max_chars,
                limits.shell_min_chars,
                what=page.url,
            )
        return await pool.run(
            extract_pdf, page.body, page.url, limits.max_pdf_pages, limits.max_chars, what=f"the PDF at {page.url}"
        )
    except PoolFailure as exc:
        raise ExtractionError(str(exc)) from None
    except MemoryError:  # raised in the worker and passed back
        raise ExtractionError(f"{page.url} needs too much memory to extract") from None


def _capped(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` at a paragraph or line end when one is near, with a note saying so."""
    if len(text) <= max_chars:
        return text
    cut = max(text.rfind("\n\n", 0, max_chars), text.rfind("\n", 0, max_chars))
    end = cut if cut > max_chars * 0.9 else max_chars
    return text[:end].rstrip() + f"\n\n[text cut at {end} of {len(text)} characters]"


def _decoded(body: bytes, charset: str | None) -> bytes | str:
    """HTML as text when the server declared a charset Python knows; else bytes for trafilatura to sniff."""
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            pass
    return body


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def extract_text(
    data: bytes, charset: str | None, url: str, media_type: str, max_chars: int = ExtractLimits.max_chars
) -> ExtractedPage:
    """Plain text as is (line ends normalised, runs of blank lines collapsed)."""
    try:
        text = data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = data.decode("utf-8", errors="replace")
    return ExtractedPage(url, None, _capped(_tidy(text), max_chars), None, media_type)


def extract_html_bytes(
    body: bytes,
    charset: str | None,
    url: str,
    max_chars: int = ExtractLimits.max_chars,
    shell_min_chars: int = ExtractLimits.shell_min_chars,
) -> ExtractedPage:
    """:func:`extract_html` of a response body, decoded here (in the worker: the body crosses the pipe once)."""
    return extract_html(_decoded(body, charset), url, max_chars, shell_min_chars)


def extract_html(
    html: bytes | str,
    url: str,
    max_chars: int = ExtractLimits.max_chars,
    shell_min_chars: int = ExtractLimits.shell_min_chars,
) -> ExtractedPage:
    """Main text of an HTML page as markdown, with its title and date; boilerplate dropped.

    The document is parsed once: title, date and the shell test read the tree, and trafilatura extracts
    from a copy of it. trafilatura's full metadata pass (authors, tags, licence...) costs several times the
    text extraction itself, so only the title and the declared publication date are read. A short text is
    checked for the signs of a JavaScript shell (``js_shell``).
    """
    import trafilatura  # heavy import, kept off the server start path
    from trafilatura import load_html

    options: dict[str, Any] = dict(
        url=url,
        include_comments=False,
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
    )
    tree = load_html(html)
    source: Any = tree if tree is not None else html
    title, date = _title_and_date(tree, html, url)
    # bare_extraction answers a Document (None when nothing was found); its type also allows a dict.
    # fast=False: trafilatura's fallback mode (its readability and jusText fallbacks compared), main-text F1 0.926
    # against 0.918 on 990 annotated pages for about 2.5 ms more CPU per page (perf/browse.py).
    text = getattr(trafilatura.bare_extraction(source, fast=False, **options), "text", None) or ""
    if not text.strip():  # short or unusual pages: the recall-oriented settings and fallbacks
        text = getattr(trafilatura.bare_extraction(source, favor_recall=True, **options), "text", None) or ""
    if not text.strip():
        _, text, _ = trafilatura.baseline(html)
    shell = shell_signal_of_tree(tree, shell_min_chars) if tree is not None and len(text) < SHELL_TEXT else None
    if not text.strip():
        if shell is not None:
            raise ExtractionError(
                f"no readable text found at {url}: it looks like a JavaScript shell ({shell}); a server with "
                "GEN_SEARCHER_FETCH__BACKEND=auto or browser renders it"
            )
        raise ExtractionError(f"no readable text found at {url}")
    return ExtractedPage(url, title, _capped(_tidy(text), max_chars), date, "text/html", js_shell=shell)


def _title_and_date(tree: Any, html: bytes | str, url: str) -> tuple[str | None, str | None]:
    from trafilatura.metadata import examine_meta, extract_title

    if tree is None:
        head = html[:65536] if isinstance(html, bytes) else html[:65536].encode("utf-8", errors="replace")
        match = _TITLE.search(head)
        title = re.sub(r"\s+", " ", match.group(1).decode("utf-8", errors="replace")).strip() if match else None
        return title or None, None
    title = examine_meta(tree).title or extract_title(tree)
    return (title or None), _published_date(tree)


# Publication dates in the page head (Open Graph, schema.org, Dublin Core, news sitemaps' conventions) and the
# first <time datetime>: what sites declare. htmldate's search of the text cost more CPU than the rest of the
# extraction on the benchmark pages (perf/browse.py --part library), for a field browse does not return.
_DATE_KEYS = frozenset(
    {
        "article:published_time",
        "og:published_time",
        "datepublished",
        "datecreated",
        "date",
        "dc.date",
        "dc.date.issued",
        "dcterms.created",
        "dcterms.date",
        "publish-date",
        "publishdate",
        "pubdate",
        "parsely-pub-date",
        "sailthru.date",
    }
)
_ISO_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})")


def _published_date(tree: Any) -> str | None:
    candidates = []
    for meta in tree.iterfind(".//meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "")[:100].lower()
        if key in _DATE_KEYS:
            candidates.append(meta.get("content") or "")
    candidates.extend(element.get("datetime") or "" for element in tree.iterfind(".//time[@datetime]"))
    for value in candidates:
        match = _ISO_DATE.match(value[:100])
        if match and 1990 <= int(match.group(1)) <= 2100 and 1 <= int(match.group(2)) <= 12:
            return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"
    return None


def extract_pdf(
    data: bytes,
    url: str,
    max_pages: int = ExtractLimits.max_pdf_pages,
    max_chars: int = ExtractLimits.max_chars,
) -> ExtractedPage:
    """Text of the first ``max_pages`` pages of a PDF, pages separated by blank lines; reading stops
    once ``max_chars`` characters are in hand."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError(f"the PDF at {url} is encrypted")
        total = len(reader.pages)
        pages: list[str] = []
        size = 0
        for index in range(min(total, max_pages)):
            page_text = (reader.pages[index].extract_text() or "").strip()
            pages.append(page_text)
            size += len(page_text)
            if size > max_chars:
                break
        meta = reader.metadata
        title = str(meta.title).strip() if meta is not None and meta.title else None
    except LimitReachedError:
        raise ExtractionError(
            f"the PDF at {url} expands beyond the safety limits when decompressed (a decompression bomb?);"
            " it was not read"
        ) from None
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ExtractionError):
            raise
        raise ExtractionError(f"the PDF at {url} could not be read: {exc}") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise ExtractionError(f"the PDF at {url} contains no extractable text (scanned images?)")
    text = _capped(_tidy(text), max_chars)
    if len(pages) < total:
        text += f"\n\n[read {len(pages)} of {total} pages]"
    return ExtractedPage(url, title, text, None, "application/pdf")
