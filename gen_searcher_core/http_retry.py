"""Being polite to HTTP services: ``Retry-After`` and request-rate limits, shared by every client.

Search providers, the policy's and the judge's chat models and the summary
model all honour a server's ``Retry-After`` and space their requests; they do it
with these helpers.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiolimiter import AsyncLimiter


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def rate_limiter(rate_per_s: float | None, *, burst: float | None = None) -> AbstractAsyncContextManager[Any]:
    """``async with`` it before each request to start at most ``rate_per_s`` requests a second.

    ``burst`` requests may start at once after a quiet spell (default: one second's worth, at
    least 1); ``burst=1`` spaces every start ``1/rate_per_s`` apart. ``None``: no limit.
    """
    if rate_per_s is None:
        return contextlib.nullcontext()
    rate = max(rate_per_s, 0.001)
    size = burst if burst is not None else max(1.0, rate)
    return AsyncLimiter(max_rate=size, time_period=size / rate)
