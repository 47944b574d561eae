"""Search backends: the protocol and result types, shipped implementations, and plugin loading."""

from search_tools.backends.base import (
    ImageHit,
    SearchBackend,
    SearchBackendError,
    WebHit,
)
from search_tools.backends.registry import ENTRY_POINT_GROUP, create_backend, known_backends, resolve_auto

__all__ = [
    "ENTRY_POINT_GROUP",
    "ImageHit",
    "SearchBackend",
    "SearchBackendError",
    "WebHit",
    "create_backend",
    "known_backends",
    "resolve_auto",
]
