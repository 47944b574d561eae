"""Building the local full-text index: a folder of pages and records into one SQLite FTS5 file.

``build_index`` turns a folder of .html/.htm/.md/.txt files and .jsonl files of
``{url, title, text}`` records into one .db file. HTML pages also contribute
the images they reference (alt text, figure caption and surrounding text), so
the local backend can answer image searches too.

A document's URL is ``base_url`` joined with its path relative to the source
folder, or a ``file://`` URL when no base URL is given, so the same folder can
be served over HTTP and browsed.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from gen_searcher_core.errors import UserFacingError
from search_tools.index_schema import SCHEMA, SCHEMA_VERSION, collapse_whitespace

DOC_SUFFIXES = frozenset({".html", ".htm", ".md", ".txt", ".jsonl"})
_CONTEXT_CHARS = 400
MAX_FILE_BYTES = 20 * 1024 * 1024  # larger files are skipped (and counted), not read into memory
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_BLOCK_TAGS = frozenset({"p", "li", "figure", "td", "th", "dd", "blockquote", "section", "article", "div"})


class IndexBuildError(UserFacingError):
    """The source folder could not be indexed (bad record, unreadable folder)."""


@dataclass
class ImageRecord:
    image_url: str
    alt: str = ""
    caption: str = ""
    context: str = ""
    width: int | None = None
    height: int | None = None


@dataclass
class Document:
    url: str
    title: str
    text: str
    images: list[ImageRecord] = field(default_factory=list)


@dataclass(frozen=True)
class IndexStats:
    documents: int
    images: int
    duplicates: int
    path: Path
    skipped: tuple[str, ...] = ()  # files too large to index


# ---------------------------------------------------------------- building


def document_url(path: Path, src_dir: Path, base_url: str | None) -> str:
    """The URL a file is known by: ``base_url`` + relative path, else its file:// URL."""
    if base_url:
        relative = path.resolve().relative_to(src_dir.resolve()).as_posix()
        return base_url.rstrip("/") + "/" + quote(relative)
    return path.resolve().as_uri()


def _int_attr(value: str | None) -> int | None:
    if value and value.strip().isdigit():
        return int(value.strip())
    return None


def decode_html(data: bytes) -> str:
    """Decode an HTML file: UTF-8 (with or without BOM), else its declared charset, else Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    match = _META_CHARSET.search(data[:4096])
    if match:
        try:
            return data.decode(match.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return data.decode("cp1252", errors="replace")


def parse_html(html: str, url: str) -> Document:
    """Title, main text (trafilatura, falling back to the body text) and referenced images."""
    import lxml.etree
    import lxml.html
    import trafilatura

    html = _XML_DECLARATION.sub("", html, count=1)  # lxml refuses str input with an encoding declaration
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):  # empty or non-HTML input
        return Document(url=url, title="", text=collapse_whitespace(html))
    title = collapse_whitespace(tree.findtext(".//title") or "")
    if not title:
        heading = tree.find(".//h1")
        title = collapse_whitespace(heading.text_content()) if heading is not None else ""
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=True, favor_recall=True) or ""
    if not text.strip():
        body = tree.find(".//body")
        text = collapse_whitespace((body if body is not None else tree).text_content())
    return Document(url=url, title=title, text=text.strip(), images=_images(tree, url))


def _images(tree: object, page_url: str) -> list[ImageRecord]:
    records: dict[str, ImageRecord] = {}
    for img in tree.iter("img"):  # type: ignore[attr-defined]
        src = (img.get("src") or img.get("data-src") or "").strip()
        if not src or src.startswith("data:"):
            continue
        image_url = urljoin(page_url, src)
        if urlsplit(image_url).scheme not in {"http", "https", "file"} or image_url in records:
            continue
        caption = ""
        context = ""
        for ancestor in img.iterancestors():
            if ancestor.tag == "figure" and not caption:
                figcaption = ancestor.find(".//figcaption")
                if figcaption is not None:
                    caption = collapse_whitespace(figcaption.text_content())
            if ancestor.tag in _BLOCK_TAGS and not context:
                context = collapse_whitespace(ancestor.text_content())
                if caption:
                    context = context.replace(caption, " ").strip()
                context = context[:_CONTEXT_CHARS]
            if caption and context:
                break
        alt = collapse_whitespace(img.get("alt") or img.get("title") or "")
        records[image_url] = ImageRecord(
            image_url=image_url,
            alt=alt,
            caption=caption,
            context=context,
            width=_int_attr(img.get("width")),
            height=_int_attr(img.get("height")),
        )
    return list(records.values())


def _markdown_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def _stem_title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip()


def _jsonl_documents(path: Path) -> Iterator[Document]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IndexBuildError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("url"), str) or not record["url"].strip():
                raise IndexBuildError(f"{path}:{number}: each record needs a non-empty string 'url'")
            text = record.get("text", "")
            title = record.get("title") or record["url"]
            if not isinstance(text, str) or not isinstance(title, str):
                raise IndexBuildError(f"{path}:{number}: 'title' and 'text' must be strings")
            yield Document(url=record["url"].strip(), title=title.strip(), text=text)


def iter_documents(
    src_dir: Path,
    base_url: str | None = None,
    *,
    skipped: list[str] | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> Iterator[Document]:
    """Every document under ``src_dir`` in a stable (sorted) order.

    Hidden files and folders are ignored; files over ``max_file_bytes`` are left
    out and their paths appended to ``skipped``.
    """
    for root, dirs, files in os.walk(src_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            suffix = path.suffix.lower()
            if name.startswith(".") or suffix not in DOC_SUFFIXES:
                continue
            if path.stat().st_size > max_file_bytes and suffix != ".jsonl":
                if skipped is not None:
                    skipped.append(str(path))
                continue
            if suffix == ".jsonl":
                yield from _jsonl_documents(path)
                continue
            url = document_url(path, src_dir, base_url)
            if suffix in {".html", ".htm"}:
                doc = parse_html(decode_html(path.read_bytes()), url)
                if not doc.title:
                    doc.title = _stem_title(path)
                yield doc
                continue
            content = path.read_text(encoding="utf-8", errors="replace")
            if suffix == ".md":
                yield Document(url=url, title=_markdown_title(content, _stem_title(path)), text=content.strip())
            else:
                yield Document(url=url, title=_stem_title(path), text=content.strip())


def build_index(
    src_dir: Path | str, out: Path | str, base_url: str | None = None, *, max_file_bytes: int = MAX_FILE_BYTES
) -> IndexStats:
    """Index every supported file under ``src_dir`` into ``out`` (replaced atomically)."""
    src = Path(src_dir)
    target = Path(out)
    if not src.is_dir():
        raise IndexBuildError(f"source folder not found: {src}")
    if base_url is not None and urlsplit(base_url).scheme not in {"http", "https", "file"}:
        raise IndexBuildError(f"--base-url must be an http(s) or file URL, got {base_url!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".index-", suffix=".db", dir=target.parent)
    os.close(fd)
    documents = images = duplicates = 0
    skipped: list[str] = []
    try:
        conn = sqlite3.connect(tmp_name)
        try:
            conn.executescript(SCHEMA)
            seen: set[str] = set()
            for doc in iter_documents(src, base_url, skipped=skipped, max_file_bytes=max_file_bytes):
                if doc.url in seen:
                    duplicates += 1
                    continue
                seen.add(doc.url)
                conn.execute("INSERT INTO docs (url, title, text) VALUES (?, ?, ?)", (doc.url, doc.title, doc.text))
                documents += 1
                for image in doc.images:
                    conn.execute(
                        "INSERT INTO images (image_url, page_url, width, height, alt, caption, context, page_title)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            image.image_url,
                            doc.url,
                            image.width,
                            image.height,
                            image.alt,
                            image.caption,
                            image.context,
                            doc.title,
                        ),
                    )
                    images += 1
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", SCHEMA_VERSION),
                    ("built_at", str(time.time())),
                    ("base_url", base_url or ""),
                    ("documents", str(documents)),
                    ("images", str(images)),
                ],
            )
            conn.execute("INSERT INTO docs (docs) VALUES ('optimize')")
            conn.commit()
        finally:
            conn.close()
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return IndexStats(documents=documents, images=images, duplicates=duplicates, path=target, skipped=tuple(skipped))
