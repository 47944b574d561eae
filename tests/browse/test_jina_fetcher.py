"""``jina``: the hosted reader's API against a loopback stand-in; the key is sent, never shown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from safe_io.fetcher import BlockedAddress, FetchError, InvalidUrl
from search_tools.fetchers.jina import JinaFetcher
from tests.browse.conftest import Web, make_fetcher
from tests.browse.jina_fake import KEY, FakeJina
from tests.support.loopback import serve_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> Iterator[tuple[FakeJina, str]]:
    reader = FakeJina()
    with serve_app(reader.app()) as base:
        yield reader, base


@pytest.fixture
async def direct(web: Web) -> AsyncIterator[object]:
    fetcher = make_fetcher(web)
    try:
        yield fetcher
    finally:
        await fetcher.aclose()


async def reader(direct: object, base: str, key: str = KEY) -> JinaFetcher:
    return JinaFetcher(direct, base_url=base, api_key=SecretStr(key), timeout_s=20)  # type: ignore[arg-type]


async def test_reads_markdown_with_the_key_as_a_bearer_token(
    fake: tuple[FakeJina, str], direct: object, web: Web
) -> None:
    jina = await reader(direct, fake[1])
    try:
        page = await jina.fetch(web.url("/article"))
    finally:
        await jina.aclose()
    assert page.fetched_with == "jina" and page.media_type == "text/markdown"
    assert page.body.startswith(b"# The Bellmoor Lighthouse") and b"Fresnel lens" in page.body
    assert fake[0].requests[-1] == {"authorization": f"Bearer {KEY}", "accept": "application/json"}


async def test_failures_are_clear_and_never_show_the_key(
    fake: tuple[FakeJina, str], direct: object, web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = await reader(direct, fake[1], key="jina_wrong_key_42")
    jina = await reader(direct, fake[1])
    try:
        with pytest.raises(FetchError, match="refused the request \\(HTTP 401\\): check JINA_API_KEY") as refused:
            await wrong.fetch(web.url("/article"))
        assert "jina_wrong_key_42" not in str(refused.value)
        with pytest.raises(FetchError, match=r"HTTP 422.*HTTP 404"):
            await jina.fetch(web.url("/status/404"))
        fake[0].fail_with = 429
        with pytest.raises(FetchError, match="rate limiting"):
            await jina.fetch(web.url("/article"))
    finally:
        fake[0].fail_with = None
        await wrong.aclose()
        await jina.aclose()
    assert KEY not in caplog.text and "jina_wrong_key_42" not in caplog.text


async def test_internal_urls_never_leave_the_server(fake: tuple[FakeJina, str], direct: object, web: Web) -> None:
    jina = await reader(direct, fake[1])
    port = web.internal_base.rsplit(":", 1)[1]
    try:
        for url in (f"http://127.0.0.1:{port}/secret", "http://169.254.169.254/", f"http://localhost:{port}/"):
            with pytest.raises(BlockedAddress):
                await jina.fetch(url)
        with pytest.raises(InvalidUrl):
            await jina.fetch("file:///etc/passwd")
    finally:
        await jina.aclose()
    assert fake[0].requests == []
