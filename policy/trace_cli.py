"""``gen-searcher trace show``: an HTML page of a saved episode trace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

trace_app = typer.Typer(
    name="trace", help="Episode traces: look at saved episodes as HTML pages.", no_args_is_help=True
)


@trace_app.command("show")
def show(
    file: Annotated[
        Path,
        typer.Argument(help="A trace: trace.json of a run, traces/<id>.json of a benchmark, verl rollouts (.jsonl)."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The page to write (default: FILE with the suffix .html)."),
    ] = None,
    index: Annotated[
        int | None,
        typer.Option("--index", help="Only this record (0-based) of a file holding several episodes."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace --out even when another command wrote it (run's trace.html).")
    ] = False,
) -> None:
    """Write an HTML page of a saved episode trace: turns, tool calls, references, the answer.

    A page another command wrote (``run``'s trace.html, with the thumbnails the model saw) is never
    replaced: without --out the page goes beside it as FILE.show.html; with --out, --force replaces it.
    """
    from policy.trace_html import write_trace_file, written_by_show

    if not file.is_file():
        typer.echo(f"error: no such trace file: {file}", err=True)
        raise typer.Exit(2)
    target = out or file.with_suffix(".html")
    if target.resolve() == file.resolve():
        typer.echo("error: --out must not overwrite the trace itself", err=True)
        raise typer.Exit(2)
    if target.exists() and not force and not written_by_show(target):
        if out is not None:
            typer.echo(
                f"error: {target} was written by another command (it may hold pictures this trace lacks); "
                "pass --force to replace it, or another --out",
                err=True,
            )
            raise typer.Exit(2)
        richer = target
        target = file.with_name(f"{file.stem}.show.html")
        typer.echo(f"note: {richer} was written by another command and stays; this page goes beside it", err=True)
    try:
        page, count = write_trace_file(file, target, index=index)
    except (ValueError, UnicodeDecodeError) as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {page} ({count} episode{'s' if count != 1 else ''})")


def register(app: typer.Typer) -> None:
    """``gen-searcher trace`` (entry point of the ``gen_searcher.commands`` group)."""
    app.add_typer(trace_app, name="trace")
