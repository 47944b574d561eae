"""``gen-searcher index``: build and query a local search index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

index_app = typer.Typer(
    name="index", help="Build and query the local (SQLite FTS5) search index.", no_args_is_help=True
)


@index_app.command("build")
def build(
    src_dir: Annotated[
        Path, typer.Argument(help="Folder of .html/.htm/.md/.txt files and .jsonl {url,title,text} records")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index file to write (replaced atomically)")],
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="URL the folder is served at; default: file:// URLs")
    ] = None,
) -> None:
    """Build a local search index from SRC_DIR."""
    from search_tools.index_build import IndexBuildError, build_index

    try:
        stats = build_index(src_dir, out, base_url=base_url)
    except IndexBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"indexed {stats.documents} documents and {stats.images} images into {stats.path}")
    for path in stats.skipped:
        typer.echo(f"skipped {path}: larger than the per-file limit", err=True)
    if stats.duplicates:
        typer.echo(f"skipped {stats.duplicates} documents with a duplicate URL", err=True)


@index_app.command("query")
def query(
    index: Annotated[Path, typer.Argument(help="Index file")],
    text: Annotated[str, typer.Argument(help="Query")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100)] = 5,
    images: Annotated[bool, typer.Option("--images", help="Search images instead of pages")] = False,
) -> None:
    """Query an index and print the hits as JSON lines."""
    import json

    from search_tools.index_read import IndexNotFoundError, LocalIndex

    idx = LocalIndex(index)
    try:
        hits = idx.image_search(text, k) if images else idx.search(text, k)
    except IndexNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for hit in hits:
        typer.echo(json.dumps(hit.to_dict(), ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """``gen-searcher index`` (entry point of the ``gen_searcher.commands`` group)."""
    app.add_typer(index_app, name="index")
