"""Extraction by content type: HTML (main text as markdown), plain text, PDF; others refused by name."""

from __future__ import annotations

import pytest

from safe_io.fetcher import FetchedPage, UnsupportedContentType
from search_tools.extract import ExtractionError, extract, sniff_media_type
from tests.browse import content

pytestmark = pytest.mark.anyio


def page(body: bytes, media_type: str, charset: str | None = None) -> FetchedPage:
    return FetchedPage(url="https://example.org/doc", status=200, media_type=media_type, charset=charset, body=body)


async def test_article_keeps_main_text_and_drops_boilerplate() -> None:
    doc = await extract(page(content.article_html().encode(), "text/html"))
    assert doc.title == "The Bellmoor Lighthouse"
    assert doc.date == "2023-05-17"
    for snippet in content.ARTICLE_KEEP:
        assert snippet in doc.text
    for snippet in content.ARTICLE_DROP:
        assert snippet not in doc.text
    assert doc.text.startswith("# The Bellmoor Lighthouse")  # markdown heading


async def test_html_declared_in_another_charset() -> None:
    html = (
        "<html><head><title>Café</title></head><body><article><p>"
        + "Crème brûlée à la café de Paris. " * 20
        + "</p></article></body></html>"
    )
    doc = await extract(
        page(html.encode("latin-1").replace(b"<head>", b'<head><meta charset="iso-8859-1">'), "text/html", "iso-8859-1")
    )
    assert "Crème brûlée" in doc.text


async def test_plain_text_is_returned_as_is() -> None:
    doc = await extract(page(b"Line one.\r\nLine two.\n\n\n\nLine three.", "text/plain"))
    assert doc.text == "Line one.\nLine two.\n\nLine three."
    assert doc.title is None


async def test_plain_text_in_a_charset_python_does_not_know_is_read_as_utf8() -> None:
    doc = await extract(page("Tide at 06:12, café open.".encode(), "text/plain", charset="x-no-such-charset"))
    assert doc.text == "Tide at 06:12, café open."


async def test_pdf_text_and_title() -> None:
    data = content.pdf_bytes(["Log of the keeper (1884).", "Fog from dawn."], title="Keeper's Log")
    doc = await extract(page(data, "application/pdf"))
    assert "Log of the keeper (1884)." in doc.text and "Fog from dawn." in doc.text
    assert doc.title == "Keeper's Log"


async def test_broken_pdf_is_a_clear_error() -> None:
    with pytest.raises(ExtractionError, match=r"PDF .* could not be read"):
        await extract(page(b"%PDF-1.4\n garbage without structure", "application/pdf"))


async def test_other_types_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedContentType, match="image/png"):
        await extract(page(content.jpeg_bytes(), "image/png"))
    with pytest.raises(UnsupportedContentType, match="application/octet-stream"):
        await extract(page(b"\x00\x01\xff\xfe" * 100, ""))


def test_sniffing_when_no_type_is_declared() -> None:
    assert sniff_media_type(page(b"%PDF-1.7 ...", "")) == "application/pdf"
    assert sniff_media_type(page(b"<!DOCTYPE html><html>", "application/octet-stream")) == "text/html"
    assert sniff_media_type(page(b"just words", "")) == "text/plain"
    assert sniff_media_type(page(b"\xff\xfe\x00\x81\x82", "")) == "application/octet-stream"


async def test_empty_html_is_a_clear_error() -> None:
    with pytest.raises(ExtractionError, match="no readable text"):
        await extract(page(b"<html><body><nav></nav></body></html>", "text/html"))


async def test_the_http_charset_decides_when_the_page_does_not_say() -> None:
    html = "<html><body><article><p>" + "Żółw płynie przez zatokę o świcie. " * 20 + "</p></article></body></html>"
    doc = await extract(page(html.encode("iso-8859-2"), "text/html", "iso-8859-2"))
    assert "Żółw płynie przez zatokę" in doc.text
