"""The local index: building from every input kind, URLs, BM25 ranking, safe queries, image candidates, CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from search_tools.index import IndexBuildError, IndexNotFoundError, LocalIndex, build_index, fts_query

app = build_app()

BASE = "http://127.0.0.1:8765/site"


def urls(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [hit.url for hit in hits]


def test_every_input_kind_is_indexed_with_base_url(index_path: Path) -> None:
    conn = sqlite3.connect(index_path)
    rows = dict(conn.execute("SELECT url, title FROM docs").fetchall())
    conn.close()
    assert rows == {
        f"{BASE}/eiffel.html": "Eiffel Tower: history and facts",
        f"{BASE}/guides/louvre%20museum.md": "The Louvre museum",
        f"{BASE}/bread_notes.txt": "bread notes",
        "https://example.org/cpp-templates": "C++ templates",
        "https://example.org/kyoto": "京都 Kyoto temples",
        "https://example.org/qwen-image": "Qwen-Image model",
    }


def test_hidden_and_unsupported_files_are_skipped(index_path: Path) -> None:
    index = LocalIndex(index_path)
    assert index.search("secret draft", 5) == []
    assert all(not url.endswith((".csv", ".hidden.md")) for url in urls(index.search("eiffel tower", 10)))


def test_file_urls_without_base_url(corpus_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "file.db"
    build_index(corpus_dir, out)
    hits = LocalIndex(out).search("louvre pyramid", 3)
    assert hits[0].url == (corpus_dir / "guides" / "louvre museum.md").resolve().as_uri()
    assert hits[0].url.startswith("file:///")


def test_bm25_ranks_the_more_relevant_document_first(index_path: Path) -> None:
    # The bread note mentions Paris and the tower once; the Eiffel page is about the tower.
    hits = LocalIndex(index_path).search("eiffel tower paris", 5)
    assert urls(hits)[0] == f"{BASE}/eiffel.html"
    assert f"{BASE}/bread_notes.txt" in urls(hits)
    assert urls(hits).index(f"{BASE}/eiffel.html") < urls(hits).index(f"{BASE}/bread_notes.txt")
    assert [hit.position for hit in hits] == list(range(1, len(hits) + 1))


def test_title_match_outranks_body_mention(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("A long note about gardening. " * 20 + "It briefly names jupiter once.")
    (src / "jupiter.md").write_text(
        "# Jupiter\n\nThe largest planet, a gas giant with a great red spot. Jupiter has many moons."
    )
    build_index(src, tmp_path / "i.db")
    hits = LocalIndex(tmp_path / "i.db").search("jupiter", 5)
    assert [hit.title for hit in hits] == ["Jupiter", "a"]


def test_snippets_come_from_the_matching_text(index_path: Path) -> None:
    hit = LocalIndex(index_path).search("Otis lifts", 1)[0]
    assert "Otis" in hit.snippet
    assert "Copyright" not in hit.snippet  # boilerplate (footer) is not indexed text
    assert len(hit.snippet) < 400


@pytest.mark.parametrize(
    "query",
    ["C++ OR (", '"unbalanced', "NEAR(a b", "title:eiffel", "*", "AND OR NOT", "a - b ^ c", "); DROP TABLE docs; --"],
)
def test_fts_syntax_in_user_input_never_crashes(index_path: Path, query: str) -> None:
    hits = LocalIndex(index_path).search(query, 5)
    assert isinstance(hits, list)


def test_operators_are_searched_as_words(index_path: Path) -> None:
    hits = LocalIndex(index_path).search("C++ templates", 3)
    assert urls(hits)[0] == "https://example.org/cpp-templates"
    assert fts_query("C++ OR (") == '"c" OR "or"'
    assert fts_query("!!! ???") is None
    assert LocalIndex(index_path).search("!!! ???", 3) == []


def test_unicode_queries_match(index_path: Path) -> None:
    assert urls(LocalIndex(index_path).search("京都", 3)) == ["https://example.org/kyoto"]
    # remove_diacritics: "zurich" finds "Zürich"
    assert urls(LocalIndex(index_path).search("zurich cafe", 3)) == ["https://example.org/kyoto"]


def test_image_candidates_from_html_with_captions_and_context(index_path: Path) -> None:
    index = LocalIndex(index_path)
    hits = index.image_search("tower sparkling sunset", 5)
    assert hits[0].image_url == f"{BASE}/img/eiffel-night.jpg"
    assert hits[0].page_url == f"{BASE}/eiffel.html"
    assert hits[0].title == "The tower sparkling after sunset over the Seine"
    assert (hits[0].width, hits[0].height) == (1200, 800)
    # An image outside a <figure>: found by its alt text and by the paragraph around it.
    lift = index.image_search("lift cabin", 5)
    assert lift[0].image_url == "http://127.0.0.1:8765/static/lift-cabin.png"  # root-relative src resolved
    assert index.image_search("Otis Fives-Lille", 5)[0].image_url.endswith("/static/lift-cabin.png")
    # data: URLs are not candidates; unknown words find nothing
    assert all(not hit.image_url.startswith("data:") for hit in index.image_search("inline pixel eiffel", 10))
    assert index.image_search("qwxz nothing", 5) == []


def test_image_urls_relative_to_file_pages(corpus_dir: Path, tmp_path: Path) -> None:
    build_index(corpus_dir, tmp_path / "f.db")
    hit = LocalIndex(tmp_path / "f.db").image_search("illuminated", 1)[0]
    assert hit.image_url == (corpus_dir / "img" / "eiffel-night.jpg").resolve().as_uri()


def test_duplicate_urls_keep_the_first(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rows = [
        {"url": "https://x.org/a", "title": "first", "text": "alpha"},
        {"url": "https://x.org/a", "title": "second", "text": "alpha"},
    ]
    (src / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    stats = build_index(src, tmp_path / "i.db")
    assert (stats.documents, stats.duplicates) == (1, 1)
    assert [hit.title for hit in LocalIndex(tmp_path / "i.db").search("alpha", 5)] == ["first"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "r.jsonl:2: not valid JSON"),
        ('{"title": "no url"}', "r.jsonl:2: each record needs a non-empty string 'url'"),
        ('{"url": "https://x.org", "text": 5}', "r.jsonl:2: 'title' and 'text' must be strings"),
    ],
)
def test_bad_jsonl_records_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "r.jsonl").write_text('{"url": "https://x.org/ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(IndexBuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_index(src, tmp_path / "i.db")
    assert not (tmp_path / "i.db").exists()
    assert list(tmp_path.glob(".index-*")) == []  # no temp file left behind


def test_rebuild_replaces_the_index(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("old content about comets")
    build_index(src, tmp_path / "i.db")
    (src / "a.txt").write_text("new content about asteroids")
    build_index(src, tmp_path / "i.db")
    index = LocalIndex(tmp_path / "i.db")
    assert index.search("comets", 3) == []
    assert len(index.search("asteroids", 3)) == 1


def test_missing_or_foreign_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="gen-searcher index build"):
        LocalIndex(tmp_path / "nope.db").search("x", 1)
    (tmp_path / "foreign.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(IndexNotFoundError, match="not a Gen-Searcher index"):
        LocalIndex(tmp_path / "foreign.db").search("x", 1)


def test_build_rejects_missing_folder_and_bad_base_url(tmp_path: Path) -> None:
    with pytest.raises(IndexBuildError, match="source folder not found"):
        build_index(tmp_path / "missing", tmp_path / "i.db")
    with pytest.raises(IndexBuildError, match="--base-url"):
        build_index(tmp_path, tmp_path / "i.db", base_url="ftp://x")


def test_cli_build_and_query(corpus_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.db"
    result = runner.invoke(
        app, ["index", "build", str(corpus_dir), "--out", str(out), "--base-url", "https://docs.example/"]
    )
    assert result.exit_code == 0, result.output
    assert "indexed 6 documents and 2 images" in result.output
    result = runner.invoke(app, ["index", "query", str(out), "glass pyramid", "-k", "1"])
    assert result.exit_code == 0, result.output
    hit = json.loads(result.output.strip())
    assert hit["url"] == "https://docs.example/guides/louvre%20museum.md"
    result = runner.invoke(app, ["index", "query", str(out), "illuminated", "--images"])
    assert json.loads(result.output.splitlines()[0])["image_url"] == "https://docs.example/img/eiffel-night.jpg"


def test_cli_reports_errors_with_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["index", "build", str(tmp_path / "missing"), "--out", str(tmp_path / "i.db")])
    assert result.exit_code == 1
    assert "source folder not found" in result.output
    result = runner.invoke(app, ["index", "query", str(tmp_path / "none.db"), "x"])
    assert result.exit_code == 1
    assert "not found" in result.output


def test_html_encodings_and_xml_declarations(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    latin = (
        '<html><head><meta charset="iso-8859-1"><title>Café crème à Orléans</title></head>'
        "<body><p>Un café près de la cathédrale.</p></body></html>"
    )
    (src / "latin.html").write_bytes(latin.encode("iso-8859-1"))
    xhtml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        "<head><title>Gaudí and the Sagrada Família</title>"
        '</head><body><p>The basilica in Barcelona.</p><img src="sf.jpg" alt="Sagrada Família facade"/></body></html>'
    )
    (src / "x.xhtml.htm").write_bytes(b"\xef\xbb\xbf" + xhtml.encode("utf-8"))  # with a BOM
    build_index(src, tmp_path / "i.db")
    index = LocalIndex(tmp_path / "i.db")
    assert [hit.title for hit in index.search("cathédrale orleans", 3)] == ["Café crème à Orléans"]
    assert [hit.title for hit in index.search("basilica barcelona", 3)] == ["Gaudí and the Sagrada Família"]
    assert index.image_search("familia facade", 1)[0].image_url.endswith("/sf.jpg")


def test_oversized_files_are_skipped_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_text("a small note about owls")
    (src / "huge.txt").write_text("owls " * 400)
    stats = build_index(src, tmp_path / "i.db", max_file_bytes=1000)
    assert stats.documents == 1
    assert stats.skipped == (str(src / "huge.txt"),)
    assert [hit.title for hit in LocalIndex(tmp_path / "i.db").search("owls", 5)] == ["small"]
