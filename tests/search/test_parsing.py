"""Provider rows to hits: the rules every shipped backend shares."""

from __future__ import annotations

from search_tools.backends.parsing import as_int, image_hits, strip_html, web_hits


def test_web_hits_skip_unusable_rows_and_number_the_rest() -> None:
    rows = [
        "not an object",
        {"link": "https://a.example/", "title": "<b>A</b> &amp; co", "snippet": "one <em>two</em>", "date": ""},
        {"title": "no url"},
        {"link": 42, "title": "url is not a string"},
        {"link": "https://b.example/", "title": "", "snippet": None, "updated": "2024-05-01", "date": "2024-01-01"},
        {"link": "https://c.example/", "title": "C"},
    ]
    hits = web_hits(rows, 2, url="link", snippet="snippet", dates=("updated", "date"))
    assert [(hit.position, hit.url) for hit in hits] == [(1, "https://a.example/"), (2, "https://b.example/")]
    assert (hits[0].title, hits[0].snippet, hits[0].date) == ("A & co", "one two", None)
    # an empty title falls back to the URL; the first non-empty date field wins
    assert (hits[1].title, hits[1].snippet, hits[1].date) == ("https://b.example/", "", "2024-05-01")


def test_image_hits_drop_repeats_and_bad_sizes() -> None:
    rows = [
        {"src": "https://img.example/1.jpg", "page": "https://p.example/1", "w": "640", "h": 480, "t": "<i>One</i>"},
        {"src": "https://img.example/1.jpg", "page": "https://p.example/dup"},
        {"src": None},
        {"src": "https://img.example/2.jpg", "page": "", "w": "-3", "h": "tall", "thumb": 7},
    ]

    def fields(row: dict) -> dict:  # type: ignore[type-arg]
        return {
            "image_url": row.get("src"),
            "page_url": row.get("page"),
            "title": row.get("t"),
            "width": row.get("w"),
            "height": row.get("h"),
            "thumbnail_url": row.get("thumb"),
        }

    hits = image_hits(rows, 10, fields)
    assert [(hit.position, hit.image_url) for hit in hits] == [
        (1, "https://img.example/1.jpg"),
        (2, "https://img.example/2.jpg"),
    ]
    assert (hits[0].page_url, hits[0].width, hits[0].height, hits[0].title) == ("https://p.example/1", 640, 480, "One")
    assert (hits[1].page_url, hits[1].width, hits[1].height, hits[1].thumbnail_url) == (
        "https://img.example/2.jpg",
        None,
        None,
        None,
    )
    assert len(image_hits(rows, 1, fields)) == 1


def test_helpers() -> None:
    assert strip_html("  a <br/>\n b &lt;c&gt; ") == "a b <c>"
    assert strip_html(None) == "" and strip_html(5) == ""
    assert (as_int("12"), as_int(0), as_int("x"), as_int(None)) == (12, None, None, None)
