"""Where fetcher plugins have imported the ``Fetcher`` seam from; it lives in :mod:`safe_io.fetch_protocol`."""

from safe_io.fetch_protocol import FetchedPage, Fetcher

__all__ = ["FetchedPage", "Fetcher"]
