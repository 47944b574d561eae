"""One deadline per provider call, retries included: a provider that drips bytes or never answers cannot
hold a search. The provider is a real server on 127.0.0.1 speaking Serper's route."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from search_tools.backends import SearchBackendError, create_backend
from tests.search.providers import SERPER_KEY
from tests.support.loopback import serve_app

pytestmark = pytest.mark.anyio


def stalling_provider(calls: collections.Counter[str]) -> Starlette:
    async def drip(request: Request) -> Response:
        """Answers 200 at once, then one byte of JSON every 0.2 s, forever: no read ever waits long."""
        calls["drip"] += 1

        async def body() -> AsyncIterator[bytes]:
            yield b'{"organic": ['
            while not await request.is_disconnected():
                await anyio.sleep(0.2)
                yield b" "

        return StreamingResponse(body(), media_type="application/json")

    async def silent(request: Request) -> Response:
        calls["silent"] += 1
        for _ in range(600):  # until the client gives up (a minute at most)
            if await request.is_disconnected():
                break
            await anyio.sleep(0.1)
        return Response(b"{}", media_type="application/json")

    return Starlette(
        routes=[Route("/drip/search", drip, methods=["POST"]), Route("/silent/search", silent, methods=["POST"])]
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, collections.Counter[str]]]:
    calls: collections.Counter[str] = collections.Counter()
    with serve_app(stalling_provider(calls)) as base:
        yield base, calls


def serper(make_settings, base: str, **search: object):  # type: ignore[no-untyped-def]
    settings = make_settings(serper_api_key=SERPER_KEY, search={"backend": "serper", "serper_url": base, **search})
    return create_backend(settings.backend_config())


async def test_a_dripping_provider_is_cut_off_by_the_per_try_timeout(provider, make_settings) -> None:  # type: ignore[no-untyped-def]
    base, calls = provider
    backend = serper(make_settings, base + "/drip", timeout_s=1.0, deadline_s=60.0, max_retries=1)
    before = calls["drip"]
    try:
        # The bound tells "ended by its timeouts" from "waits forever"; it is not a speed test.
        with anyio.fail_after(60):
            with pytest.raises(SearchBackendError) as caught:
                await backend.search("eiffel tower", 5)
    finally:
        await backend.aclose()
    assert caught.value.kind == "timeout"
    assert calls["drip"] - before == 2  # the first try and one retry, each ended by its own 1 s limit


async def test_one_deadline_covers_every_retry(provider, make_settings) -> None:  # type: ignore[no-untyped-def]
    base, calls = provider
    backend = serper(
        make_settings, base + "/silent", timeout_s=1.0, deadline_s=2.5, max_retries=10, retry_backoff_s=0.01
    )
    before = calls["silent"]
    try:
        with anyio.fail_after(60):  # the deadline is 2.5 s; the retry policy alone would take over 10 s
            with pytest.raises(SearchBackendError) as caught:
                await backend.search("eiffel tower", 5)
    finally:
        await backend.aclose()
    assert caught.value.kind == "timeout"
    message = str(caught.value)
    assert "within the 2.5 s deadline" in message and "GEN_SEARCHER_SEARCH__DEADLINE_S" in message
    assert SERPER_KEY not in message
    assert 1 <= calls["silent"] - before <= 3  # far fewer than the 11 tries the retry policy alone allows


def test_the_deadline_is_a_setting(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(search={"deadline_s": 12.5})
    assert settings.search.deadline_s == 12.5
    assert make_settings().search.deadline_s == 30.0
