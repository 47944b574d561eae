"""``gen-searcher demo``: see :mod:`benchmark.demo`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Renderer(StrEnum):
    auto = "auto"
    tiny = "tiny"
    scripted = "scripted"


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for everything the demo writes.")] = Path("runs/demo"),
    renderer: Annotated[
        Renderer,
        typer.Option(
            "--renderer",
            help="tiny: a tiny random-weight Qwen-Image pipeline (needs the render extra); scripted: an images "
            "API on loopback that hands back the first reference; auto: tiny when the render extra is installed.",
        ),
    ] = Renderer.auto,
) -> None:
    """Run Gen-Searcher end to end with no keys and no network: a sample web, scripted model and judge, three pages."""
    from benchmark.demo.run import DemoError, render_extra_installed, run_demo

    if renderer is Renderer.tiny and not render_extra_installed():
        typer.echo("error: --renderer tiny needs the render extra: pip install 'gen-searcher[render]'", err=True)
        raise typer.Exit(2)
    tiny = None if renderer is Renderer.auto else renderer is Renderer.tiny
    try:
        pages = run_demo(out, echo=typer.echo, tiny_render=tiny)
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("")
    typer.echo(pages.notice)
    typer.echo(f"episode trace:      {pages.trace}")
    typer.echo(f"benchmark report:   {pages.report}")
    typer.echo(f"baseline report:    {pages.baseline_report}")
    typer.echo(f"comparison:         {pages.compare}")
    typer.echo("Open them in a browser; they load nothing from the network. docs/reports.md explains each page.")


def register(app: typer.Typer) -> None:
    """``gen-searcher demo`` (entry point of the ``gen_searcher.commands`` group)."""
    app.command("demo")(demo)
