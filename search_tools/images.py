"""The image store's public names (the implementation lives in :mod:`search_tools.image_store`)."""

from __future__ import annotations

from search_tools.image_store import (
    IMAGE_ID_PATTERN,
    DiskImageStore,
    GcReport,
    ImageNotFoundError,
    ImageStore,
    ImageStoreUnavailable,
    SourceEntry,
    StoredImage,
    create_image_store,
    image_id_for,
    is_image_id,
    make_thumbnail,
    open_image_store,
)

__all__ = [
    "IMAGE_ID_PATTERN",
    "DiskImageStore",
    "GcReport",
    "ImageNotFoundError",
    "ImageStore",
    "ImageStoreUnavailable",
    "SourceEntry",
    "StoredImage",
    "create_image_store",
    "image_id_for",
    "is_image_id",
    "make_thumbnail",
    "open_image_store",
]
