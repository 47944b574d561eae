"""Per-episode image ids: ``IMG_001``, ``IMG_002``, … ↔ image-store ids.

The model only ever sees ``IMG_###`` ids. The same store id seen twice keeps the
IMG id it got first, so a picture found by two searches is one reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class ImageEntry:
    img_id: str
    store_id: str
    title: str | None = None
    page_url: str | None = None
    source_url: str | None = None
    width: int | None = None
    height: int | None = None
    query: str | None = None  # the image_search query that first found it

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ImageRegistry:
    """Maps IMG ids to store ids and what is known about each image (order of first sight)."""

    _by_img: dict[str, ImageEntry] = field(default_factory=dict)
    _by_store: dict[str, str] = field(default_factory=dict)

    def register(self, store_id: str, **info: Any) -> str:
        """Return the IMG id of ``store_id``, assigning the next one on first sight.

        Known fields (title, page_url, source_url, width, height, query) fill in
        what an earlier sighting left empty; they never overwrite.
        """
        existing = self._by_store.get(store_id)
        if existing is not None:
            entry = self._by_img[existing]
            missing = {k: v for k, v in info.items() if v is not None and getattr(entry, k, None) is None}
            if missing:
                self._by_img[existing] = replace(entry, **missing)
            return existing
        img_id = f"IMG_{len(self._by_img) + 1:03d}"
        self._by_img[img_id] = ImageEntry(img_id=img_id, store_id=store_id, **info)
        self._by_store[store_id] = img_id
        return img_id

    def get(self, img_id: str) -> ImageEntry:
        try:
            return self._by_img[img_id]
        except KeyError:
            raise KeyError(f"unknown image id {img_id!r}") from None

    def img_id_for(self, store_id: str) -> str | None:
        return self._by_store.get(store_id)

    def __contains__(self, img_id: object) -> bool:
        return img_id in self._by_img

    def __len__(self) -> int:
        return len(self._by_img)

    def __iter__(self) -> Iterator[ImageEntry]:
        return iter(list(self._by_img.values()))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {img_id: entry.to_dict() for img_id, entry in self._by_img.items()}
