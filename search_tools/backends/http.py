"""Shared machinery of the HTTP provider backends: rate limit, timeout, retries, error mapping.

Each request waits for the backend's token bucket, runs under the configured
timeout, and is retried with exponential backoff on 429, 5xx, timeouts and
connection failures, honouring ``Retry-After`` up to a cap (a longer one fails
at once instead of hanging). Each try's timeout is a total for that try (httpx's
own timeouts restart with every byte, so a provider dripping bytes would never
trip them), and one deadline covers the whole call: rate-limit wait, tries and
backoff. Every failure becomes a ``SearchBackendError`` whose message is
scrubbed of the backend's secrets.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from gen_searcher_core.http_retry import parse_retry_after, rate_limiter
from search_tools.backends.base import OFFLINE_HINT, ErrorKind, SearchBackendError

if TYPE_CHECKING:
    from search_tools.settings import BackendConfig

_BODY_EXCERPT = 200
_MAX_BACKOFF_S = 10.0


class RetryableError(Exception):
    """A failure worth retrying; carries the error to raise once retries are exhausted."""

    def __init__(self, error: SearchBackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def provider_url(backend: str, url: str | None) -> httpx.URL:
    """Parse a configured provider URL; anything but a valid http(s) URL is a config error."""
    try:
        parsed = httpx.URL(url or "")
    except (httpx.InvalidURL, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        raise SearchBackendError(backend, "config", "the provider URL must be an http(s) URL")
    return parsed


def origin(url: str) -> str:
    """scheme://host:port of a URL: safe to show (no credentials, path or query)."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}"


def http_options(config: BackendConfig) -> dict[str, Any]:
    """The retry/limit/timeout options every HTTP backend takes from the search section."""
    search = config.search
    return {
        "timeout_s": search.timeout_s,
        "deadline_s": search.deadline_s,
        "rate_limit_per_s": search.rate_limit_per_s,
        "max_retries": search.max_retries,
        "retry_backoff_s": search.retry_backoff_s,
        "retry_after_max_s": search.retry_after_max_s,
        "user_agent": config.user_agent,
    }


class HttpBackend:
    """Base class of the JSON-over-HTTP backends. Subclasses call ``_request_json``."""

    name = "http"
    capabilities: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        secrets: list[str] | None = None,
        timeout_s: float = 15.0,
        rate_limit_per_s: float = 10.0,
        max_retries: int = 3,
        retry_backoff_s: float = 0.5,
        retry_after_max_s: float = 30.0,
        user_agent: str | None = None,
        deadline_s: float = 30.0,
    ) -> None:
        provider_url(self.name, base_url)
        self._timeout_s = timeout_s
        self._deadline_s = deadline_s
        self.base_url = base_url.rstrip("/")
        self._secrets = [secret for secret in (secrets or []) if secret]
        self._max_retries = max(0, max_retries)
        self._backoff_s = retry_backoff_s
        self._retry_after_max_s = retry_after_max_s
        self._limiter = rate_limiter(rate_limit_per_s)
        default_headers = {"Accept": "application/json"}
        if user_agent:
            default_headers["User-Agent"] = user_agent
        self._client = httpx.AsyncClient(
            headers={**default_headers, **(headers or {})},
            auth=auth,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
        )

    # ------------------------------------------------------------ errors

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, kind: ErrorKind, message: str) -> SearchBackendError:
        return SearchBackendError(self.name, kind, self._scrub(message))

    def _body_excerpt(self, response: httpx.Response) -> str:
        text = " ".join(response.text.split())
        if not text:
            return ""
        excerpt = text[:_BODY_EXCERPT] + ("…" if len(text) > _BODY_EXCERPT else "")
        return f": {self._scrub(excerpt)}"

    def http_error(self, response: httpx.Response) -> SearchBackendError | RetryableError:
        """Map a non-2xx response to an error; retryable ones are wrapped in ``RetryableError``."""
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self._retry_after_max_s:
                return self.error(
                    "rate_limited", f"rate limited (HTTP 429); the provider asks to retry after {retry_after:.0f} s"
                )
            return RetryableError(self.error("rate_limited", "rate limited (HTTP 429) after retries"), retry_after)
        if status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self._retry_after_max_s:
                retry_after = None
            return RetryableError(
                self.error("unavailable", f"provider error (HTTP {status}) after retries"), retry_after
            )
        if status in (401, 403):
            return self.error(
                "auth",
                f"the provider rejected the request (HTTP {status}); check the API key{self._body_excerpt(response)}",
            )
        return self.error(
            "bad_request", f"the provider refused the request (HTTP {status}){self._body_excerpt(response)}"
        )

    # ------------------------------------------------------------ requests

    def _wait(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return exc.retry_after
        delay = self._backoff_s * (2.0 ** (int(retry_state.attempt_number) - 1))
        return min(_MAX_BACKOFF_S, delay * (0.5 + random.random()))

    async def _attempt(self, method: str, url: str, params: dict[str, Any] | None, json_body: Any) -> Any:
        async with self._limiter:
            try:
                with anyio.fail_after(self._timeout_s):
                    response = await self._client.request(method, url, params=params, json=json_body)
            except (httpx.TimeoutException, TimeoutError):
                raise RetryableError(self.error("timeout", f"no answer from {origin(url)} in time")) from None
            except httpx.TransportError as exc:
                raise RetryableError(
                    self.error("unavailable", f"could not reach {origin(url)} ({type(exc).__name__}); {OFFLINE_HINT}")
                ) from None
            except httpx.RequestError as exc:  # e.g. a body that does not decode as its Content-Encoding
                raise self.error(
                    "bad_response", f"unreadable answer from {origin(url)} ({type(exc).__name__})"
                ) from None
        if response.status_code >= 400 or response.status_code < 200:
            failure = self.http_error(response)
            raise failure
        if response.status_code >= 300:
            raise self.error("bad_response", f"unexpected redirect (HTTP {response.status_code})")
        try:
            return response.json()
        except ValueError:
            raise self.error(
                "bad_response", f"the provider did not answer JSON{self._body_excerpt(response)}"
            ) from None

    async def _request_json(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any:
        url = f"{self.base_url}{path}"
        tries = 0
        try:
            with anyio.fail_after(self._deadline_s):
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self._max_retries + 1),
                    retry=retry_if_exception_type(RetryableError),
                    wait=self._wait,
                    reraise=True,
                ):
                    with attempt:
                        tries += 1
                        return await self._attempt(method, url, params, json_body)
        except RetryableError as exc:
            raise exc.error from None
        except TimeoutError:
            raise self.error(
                "timeout",
                f"no complete answer from {origin(url)} within the {self._deadline_s:g} s deadline"
                f" ({tries} {'try' if tries == 1 else 'tries'}; GEN_SEARCHER_SEARCH__DEADLINE_S sets it)",
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def bad_shape(self, what: str) -> SearchBackendError:
        return self.error("bad_response", f"unexpected response shape: {what}")

    async def aclose(self) -> None:
        await self._client.aclose()
