"""SearchService (cache keys, single-flight, replay, metrics), backend selection and plugins, services wiring."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.metrics import Metrics
from search_tools.backends import SearchBackendError, WebHit, create_backend, known_backends, resolve_auto
from search_tools.backends.local import LocalBackend
from search_tools.cache import CacheMissError, SQLiteCache
from search_tools.search_service import SearchService, normalize_query
from search_tools.testing import check_backend_conformance


class CountingBackend:
    """Wraps a real backend and counts the calls that reach it."""

    def __init__(self, inner: Any, *, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.delay_s = delay_s
        self.calls: list[tuple[str, str, int]] = []
        self.fail: Exception | None = None

    async def search(self, query: str, k: int) -> list[WebHit]:
        self.calls.append(("search", query, k))
        await anyio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        return await self.inner.search(query, k)

    async def image_search(self, query: str, k: int):  # type: ignore[no-untyped-def]
        self.calls.append(("image_search", query, k))
        return await self.inner.image_search(query, k)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def counting(index_path: Path):  # type: ignore[no-untyped-def]
    backend = CountingBackend(LocalBackend(index_path), delay_s=0.05)
    yield backend
    await backend.aclose()


@pytest.fixture
async def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "service-cache.db"


@pytest.mark.anyio
async def test_cache_key_is_backend_operation_normalized_query_and_k(
    counting: CountingBackend, cache_file: Path
) -> None:
    cache = SQLiteCache(cache_file)
    service = SearchService(counting, cache)
    first = await service.search("Eiffel  Tower", 3)
    assert await service.search("eiffel tower", 3) == first
    assert await service.search("  EIFFEL tower ", 3) == first
    assert len(counting.calls) == 1
    await service.search("eiffel tower", 2)  # another k
    await service.image_search("eiffel tower", 3)  # another operation
    assert [call[0] for call in counting.calls] == ["search", "search", "image_search"]
    assert isinstance(first[0], WebHit) and first[0].url.endswith("/eiffel.html")
    assert normalize_query("  Ｅｉｆｆｅｌ\tTOWER ") == "eiffel tower"
    await cache.aclose()


@pytest.mark.anyio
async def test_fifty_concurrent_identical_searches_make_one_backend_call(
    counting: CountingBackend, cache_file: Path
) -> None:
    metrics = Metrics()
    cache = SQLiteCache(cache_file, metrics=metrics)
    service = SearchService(counting, cache, metrics=metrics)
    answers: list[list[WebHit]] = []

    async def one() -> None:
        answers.append(await service.search("louvre museum", 5))

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(one)
    assert len(counting.calls) == 1
    assert len(answers) == 50 and all(answer == answers[0] for answer in answers) and answers[0]
    assert metrics.value("gen_searcher_backend_calls_total", {"backend": "local"}) == 1
    assert metrics.value("gen_searcher_cache_events_total", {"namespace": "search", "result": "miss"}) == 1
    assert metrics.value("gen_searcher_cache_events_total", {"namespace": "search", "result": "hit"}) == 49
    await cache.aclose()


@pytest.mark.anyio
async def test_backend_errors_are_counted_and_not_cached(counting: CountingBackend, cache_file: Path) -> None:
    metrics = Metrics()
    cache = SQLiteCache(cache_file, metrics=metrics)
    service = SearchService(counting, cache, metrics=metrics)
    counting.fail = SearchBackendError("local", "unavailable", "index busy")
    with pytest.raises(SearchBackendError, match="index busy"):
        await service.search("louvre", 3)
    counting.fail = None
    assert await service.search("louvre", 3)
    assert len(counting.calls) == 2
    assert metrics.value("gen_searcher_backend_errors_total", {"backend": "local"}) == 1
    # A plugin breaking the contract (raising something else) still yields a SearchBackendError.
    counting.fail = KeyError("oops")
    with pytest.raises(SearchBackendError, match="backend raised KeyError") as info:
        await service.search("something new", 3)
    assert info.value.kind == "bad_response"
    await cache.aclose()


@pytest.mark.anyio
async def test_replay_serves_recorded_results_without_the_backend(counting: CountingBackend, cache_file: Path) -> None:
    recorder = SearchService(counting, SQLiteCache(cache_file))
    recorded = await recorder.search("mona lisa", 3)
    recorded_images = await recorder.image_search("eiffel tower", 2)
    await recorder.cache.aclose()  # type: ignore[attr-defined]
    counting.calls.clear()
    replay = SearchService(counting, SQLiteCache(cache_file, mode="replay"))
    assert await replay.search("Mona Lisa", 3) == recorded
    assert await replay.image_search("eiffel tower", 2) == recorded_images
    with pytest.raises(CacheMissError, match="replay"):
        await replay.search("never asked before", 3)
    with pytest.raises(CacheMissError):
        await replay.search("mona lisa", 4)  # another k was never recorded
    assert counting.calls == []
    await replay.cache.aclose()  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_bad_requests_and_unsupported_capabilities(counting: CountingBackend, cache_file: Path) -> None:
    cache = SQLiteCache(cache_file)
    service = SearchService(counting, cache)
    for query, k in [("", 3), ("   ", 3), ("x" * 2001, 3), ("ok", 0), ("ok", 101)]:
        with pytest.raises(SearchBackendError) as info:
            await service.search(query, k)
        assert info.value.kind == "bad_request"
    counting.capabilities = frozenset({"web"})
    with pytest.raises(SearchBackendError, match="does not support image search") as info:
        await service.image_search("eiffel", 3)
    assert info.value.kind == "unsupported"
    assert counting.calls == []
    await cache.aclose()


# ---------------------------------------------------------------- selection and plugins


def test_auto_order(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert resolve_auto(make_settings().provider_keys()) == "ddgs"
    assert resolve_auto(make_settings(searxng_url="http://127.0.0.1:1").provider_keys()) == "searxng"
    assert resolve_auto(make_settings(searxng_url="http://127.0.0.1:1", brave_api_key="b").provider_keys()) == "brave"
    assert (
        resolve_auto(
            make_settings(searxng_url="http://127.0.0.1:1", brave_api_key="b", serper_api_key="s").provider_keys()
        )
        == "serper"
    )


def test_auto_reads_the_usual_environment_variables(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BRAVE_API_KEY", "from-env")
    assert create_backend(make_settings().backend_config()).name == "brave"
    monkeypatch.setenv("SERPER_API_KEY", "from-env")
    assert create_backend(make_settings().backend_config()).name == "serper"
    monkeypatch.setenv("GEN_SEARCHER_SEARCH__BACKEND", "ddgs")
    assert create_backend(make_settings().backend_config()).name == "ddgs"


def test_unknown_backend_lists_known_names(make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SearchBackendError) as info:
        create_backend(make_settings(search={"backend": "bingo"}).backend_config())
    assert info.value.kind == "config"
    assert "unknown search backend 'bingo'; known search backends: auto, brave, ddgs, local, searxng, serper" in str(
        info.value
    )


PLUGIN_SOURCE = '''
from search_tools.backends.base import SearchBackendError, WebHit, check_request, unsupported

class EchoBackend:
    """A toy third-party backend: every query with a word of 'tower' returns synthetic hits."""
    name = "echo"
    capabilities = frozenset({"web"})

    def __init__(self, settings):
        self.timeout = settings.search.timeout_s

    async def search(self, query, k):
        query = check_request(self.name, query, k)
        if "tower" not in query.lower() and "zürich" not in query.lower():
            return []
        return [WebHit(title=f"{query} #{i}", url=f"https://echo.example/{i}", snippet=query, position=i)
                for i in range(1, min(k, 7) + 1)]

    async def image_search(self, query, k):
        raise unsupported(self.name, "images")

    async def aclose(self):
        pass

def create(settings):
    return EchoBackend(settings)

not_callable = 42

def broken_factory(settings):
    return object()
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real installed distribution (dist-info with entry_points.txt) on the import path."""
    site = tmp_path / "site"
    module = "gs_echo_plugin_" + tmp_path.name.replace("-", "_")
    (site / f"{module}.py").parent.mkdir(parents=True)
    (site / f"{module}.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    dist_info = site / "gs_echo_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: gs-echo-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [gen_searcher.search_backends]
            echo = {module}:create
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    yield module
    sys.modules.pop(module, None)


@pytest.mark.anyio
async def test_plugin_from_an_installed_distribution(installed_plugin: str, make_settings) -> None:  # type: ignore[no-untyped-def]
    assert "echo" in known_backends()
    backend = create_backend(make_settings(search={"backend": "echo", "timeout_s": 3.5}).backend_config())
    assert backend.name == "echo" and backend.timeout == 3.5  # type: ignore[attr-defined]
    # The third party proves its backend with the kit, exactly as the shipped ones do.
    await check_backend_conformance(backend, query_with_results="eiffel tower", query_without_results="nothing here")


def test_plugin_loader_errors(installed_plugin: str, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(search={"backend": "custom"})
    cases = {
        "missing module": (
            EntryPoint("custom", "gs_no_such_module_xyz:create", "gen_searcher.search_backends"),
            "could not load search backend plugin",
        ),
        "not callable": (
            EntryPoint("custom", f"{installed_plugin}:not_callable", "gen_searcher.search_backends"),
            "is not callable",
        ),
        "wrong object": (
            EntryPoint("custom", f"{installed_plugin}:broken_factory", "gen_searcher.search_backends"),
            "backend object lacks name",
        ),
    }
    for label, (entry_point, message) in cases.items():
        with pytest.raises(SearchBackendError, match=message) as info:
            create_backend(settings.backend_config(), plugins={"custom": entry_point})
        assert info.value.kind == "config", label
    ok = EntryPoint("custom", f"{installed_plugin}:create", "gen_searcher.search_backends")
    assert create_backend(settings.backend_config(), plugins={"custom": ok}).name == "echo"


# ---------------------------------------------------------------- services wiring


@pytest.mark.anyio
async def test_open_services_provides_cached_search(index_path: Path, make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from mcp_server.services import open_services

    settings = make_settings(search={"backend": "local", "index": index_path})
    async with open_services(settings) as services:
        assert isinstance(services.cache, SQLiteCache) and services.cache.path == tmp_path / "cache.db"
        assert services.search is not None and services.search.backend_name == "local"
        hits = await services.search.search("glass pyramid", 2)
        assert hits[0].title == "The Louvre museum"
        await services.search.search("glass pyramid", 2)
        images = await services.search.image_search("lift cabin", 1)
        assert images[0].image_url.endswith("/static/lift-cabin.png")
        assert services.metrics.value("gen_searcher_backend_calls_total", {"backend": "local"}) == 2
        assert services.metrics.value("gen_searcher_cache_events_total", {"namespace": "search", "result": "hit"}) == 1
    assert (tmp_path / "cache.db").exists()
    # A new server over the same cache file in replay mode answers without an index at all.
    replay = make_settings(search={"backend": "local", "index": tmp_path / "gone.db"}, cache={"mode": "replay"})
    async with open_services(replay) as services:
        assert (await services.search.search("Glass  Pyramid", 2))[0].title == "The Louvre museum"


@pytest.mark.anyio
async def test_two_servers_share_one_redis_cache(index_path: Path, make_settings, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from mcp_server.services import open_services
    from search_tools.cache import RedisCache

    first = make_settings(search={"backend": "local", "index": index_path}, cache={"url": redis_url})
    async with open_services(first) as services:
        assert isinstance(services.cache, RedisCache)
        await services.cache._client.flushdb()  # type: ignore[attr-defined]  # start from an empty shared cache
        recorded = await services.search.search("sourdough starter", 3)
        assert recorded[0].url.endswith("/bread_notes.txt")
    # A replica with no index at all, replaying from the shared cache.
    replica = make_settings(
        search={"backend": "local", "index": index_path.parent / "absent.db"},
        cache={"url": redis_url, "mode": "replay"},
    )
    async with open_services(replica) as services:
        assert await services.search.search("Sourdough Starter", 3) == recorded
        with pytest.raises(CacheMissError):
            await services.search.search("sourdough starter", 4)
        await services.cache._client.flushdb()  # type: ignore[attr-defined]
