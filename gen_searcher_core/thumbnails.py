"""Small JPEG thumbnails of image files, made once and reused while the source is unchanged."""

from __future__ import annotations

from pathlib import Path

DEFAULT_SIDE = 320
DEFAULT_QUALITY = 80


def make_thumbnail(source: Path, dest: Path, *, max_side: int = DEFAULT_SIDE, quality: int = DEFAULT_QUALITY) -> bool:
    """Write a JPEG of ``source`` no larger than ``max_side`` to ``dest``; False when the source is unreadable.

    A thumbnail newer than its source is kept as it is, so a report written again costs
    nothing for images it has seen before.
    """
    from PIL import UnidentifiedImageError

    from gen_searcher_core.imaging import jpeg_thumbnail

    try:
        source_mtime = source.stat().st_mtime
    except OSError:
        return False
    try:
        if dest.stat().st_mtime >= source_mtime:
            return True
    except OSError:
        pass
    try:
        thumbnail = jpeg_thumbnail(source.read_bytes(), max_side, quality)
    except (UnidentifiedImageError, OSError, ValueError):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(thumbnail)
    tmp.replace(dest)
    return True
