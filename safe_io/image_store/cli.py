"""``gen-searcher images gc``: delete stored images not used for N days (disk or S3 store).

Nothing is ever deleted unless asked: the disk store's size budget evicts least
recently used images on its own, while an S3 store keeps everything until this
command (or a bucket lifecycle rule, see docs/scaling.md) removes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import Field

from gen_searcher_core.config import ConfigRoot
from safe_io.settings import ImageSettings


class ImagesConfig(ConfigRoot):
    """The ``[images]`` section, read from the shared settings file and environment."""

    images: ImageSettings = Field(default_factory=ImageSettings)


def gc(
    older_than_days: Annotated[
        float,
        typer.Option("--older-than-days", min=0, help="delete images not used (disk) / stored (S3) for this long"),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only count what would go")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (default: $GEN_SEARCHER_CONFIG)", show_default=False),
    ] = None,
) -> None:
    """Delete images (and remembered source URLs) older than --older-than-days from the configured store."""
    import anyio

    from gen_searcher_core.errors import ConfigError
    from safe_io.image_store import ImageStoreUnavailable, open_image_store

    try:
        settings = ImagesConfig.load(config).images
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: bad settings: {exc}", err=True)
        raise typer.Exit(2) from None

    async def run() -> str:
        store = await open_image_store(settings)
        try:
            report = await store.gc(older_than_days * 86400, dry_run=dry_run)
        finally:
            await store.aclose()
        verb = "would delete" if dry_run else "deleted"
        return (
            f"{store.location}: {verb} {report.images} images ({report.bytes} bytes) and "
            f"{report.sources} source entries; kept {report.kept} images"
        )

    try:
        typer.echo(anyio.run(run))
    except (ConfigError, ImageStoreUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """``gen-searcher images ...`` (entry point of the ``gen_searcher.commands`` group)."""
    images = typer.Typer(name="images", help="Manage the image store (disk or S3).", no_args_is_help=True)
    images.command("gc")(gc)
    app.add_typer(images, name="images")
