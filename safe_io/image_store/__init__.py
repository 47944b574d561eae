"""The content-addressed image store: on local disk (the default) or on S3-compatible object storage.

``create_image_store(settings.images)`` picks the implementation: ``images.url``
(``s3://bucket/prefix``) gives the shared :class:`S3ImageStore` with a local
read-through cache; without it, a :class:`DiskImageStore` in ``images.dir``.
"""

from __future__ import annotations

from safe_io.image_store.base import (
    IMAGE_ID_PATTERN,
    GcReport,
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


def create_image_store(settings: ImageSettings) -> ImageStore:
    """The store these settings describe (not yet checked; see :func:`open_image_store`)."""
    if settings.url:
        from safe_io.image_store.s3 import S3ImageStore

        return S3ImageStore.from_settings(settings)
    return DiskImageStore(
        settings.dir, max_total_bytes=settings.max_total_bytes, thumbnail_side=settings.thumbnail_side
    )


async def open_image_store(settings: ImageSettings) -> ImageStore:
    """The configured store, checked: raises ``ConfigError`` (one line naming the setting) when unusable."""
    store = create_image_store(settings)
    try:
        await store.check()
    except Exception:
        await store.aclose()
        raise
    return store
