"""Choosing the fetcher: the four shipped names, plugins from ``gen_searcher.fetchers``, clear errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from gen_searcher_core.errors import ConfigError
from safe_io.fetch_protocol import FetchedPage
from safe_io.fetcher import GuardedFetcher
from search_tools.fetchers import ENTRY_POINT_GROUP, FetcherConfig, create_fetcher, known_fetchers
from search_tools.settings import FetchSettings
from tests.browse.conftest import Web, browse_settings, make_fetcher, text_of, tool_client

pytestmark = pytest.mark.anyio


class EchoFetcher:
    """A third party's fetcher: answers every URL with a fixed text."""

    name = "echo"

    def __init__(self, config: FetcherConfig) -> None:
        self.guard_key = config.direct.guard_key + ";fetcher=echo"

    async def fetch(self, url: str, *, accept: object = None, max_bytes: int | None = None) -> FetchedPage:
        return FetchedPage(url, 200, "text/plain", "utf-8", f"echo of {url}".encode(), fetched_with="echo")


def make_echo(config: FetcherConfig) -> EchoFetcher:
    return EchoFetcher(config)


def make_nothing(config: FetcherConfig) -> object:
    return object()


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.fixture
async def config(web: Web) -> AsyncIterator[FetcherConfig]:
    direct = make_fetcher(web)
    try:
        yield FetcherConfig(FetchSettings(), direct)
    finally:
        await direct.aclose()


def test_the_shipped_fetchers_are_registered_and_direct_is_the_default() -> None:
    assert {"direct", "browser", "auto", "jina"} <= set(known_fetchers())
    assert FetchSettings().backend == "direct"


async def test_direct_is_the_shared_guarded_fetcher(config: FetcherConfig) -> None:
    fetcher = create_fetcher(config)
    assert fetcher is config.direct and isinstance(fetcher, GuardedFetcher)


async def test_plugins_and_clear_errors(config: FetcherConfig) -> None:
    here = "tests.browse.test_fetcher_registry"
    echo = create_fetcher(config, "echo", plugins=[entry("echo", f"{here}:make_echo")])
    assert isinstance(echo, EchoFetcher)
    with pytest.raises(ConfigError, match=r"unknown fetcher 'nope'.*auto, browser, direct, jina"):
        create_fetcher(config, "nope")
    with pytest.raises(ConfigError, match="registered more than once"):
        create_fetcher(config, "echo", plugins=[entry("echo", f"{here}:make_echo"), entry("echo", f"{here}:other")])
    with pytest.raises(ConfigError, match="could not load fetcher plugin"):
        create_fetcher(config, "broken", plugins=[entry("broken", "no_such_module:create")])
    with pytest.raises(ConfigError, match="did not return a Fetcher"):
        create_fetcher(config, "nothing", plugins=[entry("nothing", f"{here}:make_nothing")])


async def test_an_unknown_backend_stops_the_server_with_one_clear_line(tmp_path: Path, web: Web) -> None:
    with pytest.raises(ConfigError, match="unknown fetcher 'chrome'"):
        async with tool_client(browse_settings(tmp_path, web, fetch={"backend": "chrome"})):
            pass


async def test_the_browse_result_says_which_fetcher_served_it(tmp_path: Path, web: Web) -> None:
    async with tool_client(browse_settings(tmp_path, web)) as client:
        result = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "tides"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["fetched_with"] == "direct"
