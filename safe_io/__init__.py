"""Guarded I/O that search and render share: the guarded fetcher and the image store.

* :mod:`safe_io.fetcher` -- :class:`~safe_io.fetcher.GuardedFetcher`, httpx behind the
  address guard (:mod:`safe_io.netguard`), robots.txt (:mod:`safe_io.robots`) and
  bounded decoding (:mod:`safe_io.bounded_decode`); :mod:`safe_io.fetch_protocol` is
  the ``Fetcher`` seam that browse's fetchers implement.
* :mod:`safe_io.image_store` -- the content-addressed image store (local disk or S3).
* :mod:`safe_io.settings` -- their settings sections (``fetch``, ``images``).

Nothing here knows about search providers, rendering or MCP.
"""
