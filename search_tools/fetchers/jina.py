"""``jina``: pages read by the hosted Jina Reader (``r.jina.ai``), the reader the published Gen-Searcher used.

The reader renders the page on its side and answers markdown, so this fetcher
returns ``text/markdown``. The URL passes the same checks as ``direct`` before
it is sent (scheme, credentials, internal hosts by name or literal address):
internal URLs never leave the server. The key comes from ``JINA_API_KEY``
(optional: the reader serves anonymous requests at a lower rate) and never
appears in logs or errors.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import anyio
import httpx
from pydantic import SecretStr

from safe_io.fetch_protocol import FetchedPage
from safe_io.fetcher import ConnectionFailed, FetchError, FetchTimeout, GuardedFetcher, TooLarge
from search_tools.fetchers.registry import FetcherConfig


class JinaFetcher:
    name = "jina"

    def __init__(
        self,
        direct: GuardedFetcher,
        *,
        base_url: str = "https://r.jina.ai",
        api_key: SecretStr | None = None,
        timeout_s: float = 60.0,
        max_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        self.direct = direct
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._key = api_key.get_secret_value() if api_key is not None else ""
        headers = {"Accept": "application/json", "User-Agent": direct.user_agent}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self._client = httpx.AsyncClient(headers=headers, trust_env=False, timeout=httpx.Timeout(timeout_s))

    @property
    def guard_key(self) -> str:
        return f"{self.direct.guard_key};fetcher=jina:{self.base_url}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self, url: str, *, accept: Collection[str] | None = None, max_bytes: int | None = None
    ) -> FetchedPage:
        checked = str(self.direct._validate(url))  # the direct fetcher's URL checks: nothing internal is sent out
        cap = max_bytes or self.max_bytes
        try:
            with anyio.fail_after(self.timeout_s):
                status, body = await self._post(checked, cap)
        except TimeoutError:
            raise FetchTimeout(f"the jina reader did not answer within {self.timeout_s:g} s for {checked}") from None
        except httpx.HTTPError as exc:
            raise ConnectionFailed(self._scrub(f"could not reach the jina reader: {type(exc).__name__}")) from None
        return self._page(checked, status, body)

    async def _post(self, url: str, cap: int) -> tuple[int, bytes]:
        async with self._client.stream("POST", self.base_url, json={"url": url}) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise TooLarge(f"the jina reader's answer for {url} is over the limit of {cap} bytes")
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _page(self, url: str, status: int, body: bytes) -> FetchedPage:
        try:
            answer: Any = json.loads(body)
        except ValueError:
            answer = None
        if status in (401, 403):
            raise FetchError(f"the jina reader refused the request (HTTP {status}): check JINA_API_KEY")
        if status == 429:
            raise FetchError("the jina reader is rate limiting this server (HTTP 429); try again later")
        data = answer.get("data") if isinstance(answer, dict) else None
        if status >= 400 or not isinstance(data, dict):
            said = ""
            if isinstance(answer, dict):
                said = str(answer.get("readableMessage") or answer.get("message") or "")[:300]
            detail = f": {said}" if said else ""
            raise FetchError(self._scrub(f"the jina reader could not read {url} (HTTP {status}){detail}"))
        content = str(data.get("content") or "")
        title = str(data.get("title") or "").strip()
        if title and not content.lstrip().startswith("#"):
            content = f"# {title}\n\n{content}"
        return FetchedPage(
            url=str(data.get("url") or url),
            status=200,
            media_type="text/markdown",
            charset="utf-8",
            body=content.encode("utf-8"),
            fetched_with="jina",
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text


def create(config: FetcherConfig) -> JinaFetcher:
    return JinaFetcher(
        config.direct,
        base_url=config.fetch.jina_url,
        api_key=config.jina_api_key,
        timeout_s=config.fetch.jina_timeout_s,
        max_bytes=config.fetch.max_bytes,
    )
