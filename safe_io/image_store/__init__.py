"""The content-addressed image store: on local disk (the default) or on S3-compatible object storage.

``create_image_store(settings.images)`` picks the implementation: ``images.url``
(``s3://bucket/prefix``) gives the shared :class:`S3ImageStore` with a local
read-through cache; without it, a :class:`DiskImageStore` in ``images.dir``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safe_io.image_store.base import (
    IMAGE_ID_PATTERN,
    GcReport,
    ImageIntegrityError,
    ImageNotFoundError,
    ImageStore,
    ImageStoreUnavailable,
    SourceEntry,
    StoredImage,
    image_id_for,
    is_image_id,
    make_thumbnail,
)
from safe_io.image_store.disk import DiskImageStore
from safe_io.settings import ImageSettings

if TYPE_CHECKING:
    from safe_io.image_store.s3 import ImageStoreEvents

__all__ = [
    "IMAGE_ID_PATTERN",
    "DiskImageStore",
    "GcReport",
    "ImageIntegrityError",
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


def create_image_store(settings: ImageSettings, *, events: ImageStoreEvents | None = None) -> ImageStore:
    """The store these settings describe (not yet checked; see :func:`open_image_store`).

    ``events`` (the server's metrics) hears what the S3 store refused or restored.
    """
    if settings.url:
        from safe_io.image_store.s3 import S3ImageStore

        return S3ImageStore.from_settings(settings, events=events)
    return DiskImageStore(
        settings.dir, max_total_bytes=settings.max_total_bytes, thumbnail_side=settings.thumbnail_side
    )


async def open_image_store(settings: ImageSettings, *, events: ImageStoreEvents | None = None) -> ImageStore:
    """The configured store, checked: raises ``ConfigError`` (one line naming the setting) when unusable."""
    store = create_image_store(settings, events=events)
    try:
        await store.check()
    except Exception:
        await store.aclose()
        raise
    return store
