"""The browse tool's behaviour with every shipped fetcher, through one fixture: ``direct``, ``browser``,
``auto`` and ``jina`` (against a loopback stand-in of the hosted reader)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from mcp import Client

from tests.browse import content
from tests.browse.browser_support import allowed, js_web_server  # noqa: F401 - a fixture
from tests.browse.conftest import Web, browse_settings, text_of, tool_client
from tests.browse.jina_fake import KEY, FakeJina
from tests.browse.js_web import JsWeb
from tests.support.loopback import serve_app

pytestmark = pytest.mark.anyio
FETCHERS = ["direct", pytest.param("browser", marks=pytest.mark.slow), pytest.param("auto", marks=pytest.mark.slow)]
FETCHERS.append("jina")
# What each fetcher says served a server-rendered HTML page.
SERVED_BY = {"direct": "direct", "browser": "browser", "auto": "direct", "jina": "jina"}


@pytest.fixture(scope="session")
def jina() -> Iterator[tuple[FakeJina, str]]:
    fake = FakeJina()
    with serve_app(fake.app()) as base:
        yield fake, base


@pytest.fixture(params=FETCHERS)
async def browse(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    web: Web,
    js_web: JsWeb,
    jina: tuple[FakeJina, str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[str, Client]]:
    """An MCP client session on a tool server whose browse reads with the fetcher named by the parameter."""
    name = request.param
    fetch: dict[str, Any] = {"backend": name, "allowed_addresses": allowed(web, js_web), "browser_contexts": 2}
    if name == "jina":
        fetch["jina_url"] = jina[1]
        monkeypatch.setenv("JINA_API_KEY", KEY)
    async with tool_client(browse_settings(tmp_path, web, fetch=fetch)) as client:
        yield name, client


async def call(client: Client, url: str, goal: str = "history") -> Any:
    return await client.call_tool("browse", {"url": url, "goal": goal})


async def test_reads_the_article_without_boilerplate(browse: tuple[str, Client], web: Web) -> None:
    name, client = browse
    result = await call(client, web.url("/article"))
    assert not result.is_error, text_of(result)
    data = result.structured_content
    for snippet in content.ARTICLE_KEEP:
        assert snippet in data["content"]
    for snippet in ("Buy cheap watches now", "Subscribe to our newsletter"):
        assert snippet not in data["content"]
    assert data["fetched_with"] == SERVED_BY[name]


async def test_reads_plain_text_and_pdf(browse: tuple[str, Client], web: Web) -> None:
    _, client = browse
    text = await call(client, web.url("/tides.txt"), "tides")
    assert not text.is_error and "High water 06:12" in text.structured_content["content"]
    pdf = await call(client, web.url("/log.pdf"), "weather")
    assert not pdf.is_error and "Fog from dawn" in pdf.structured_content["content"]


async def test_internal_addresses_are_refused_and_the_server_keeps_serving(
    browse: tuple[str, Client], web: Web
) -> None:
    _, client = browse
    port = web.internal_base.rsplit(":", 1)[1]
    before = sum(web.internal_hits.values())
    for url in (f"http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest/", f"http://localhost:{port}/"):
        refused = await call(client, url)
        assert refused.is_error and "refused" in text_of(refused), url
    assert not (await call(client, web.url("/tides.txt"))).is_error
    assert sum(web.internal_hits.values()) == before


async def test_a_redirect_into_an_internal_address_is_refused(browse: tuple[str, Client], web: Web) -> None:
    name, client = browse
    if name == "jina":
        pytest.skip("the hosted reader follows redirects on its own network, which cannot reach ours")
    port = web.internal_base.rsplit(":", 1)[1]
    before = sum(web.internal_hits.values())
    result = await call(client, web.url("/redirect?to=" + quote(f"http://127.0.0.1:{port}/secret", safe="")))
    assert result.is_error and "redirect from" in text_of(result)
    assert sum(web.internal_hits.values()) == before


async def test_http_errors_are_clear(browse: tuple[str, Client], web: Web) -> None:
    _, client = browse
    result = await call(client, web.url("/status/404"))
    assert result.is_error and "404" in text_of(result) and text_of(result).startswith("browse failed:")


async def test_pages_are_cached(browse: tuple[str, Client], web: Web) -> None:
    _, client = browse
    before = web.hits["/article"]
    first = await call(client, web.url("/article"), "lens")
    second = await call(client, web.url("/article"), "keepers")
    assert not first.is_error and not second.is_error
    assert web.hits["/article"] - before == 1
