"""Serper, SearXNG and Brave against loopback servers speaking their real APIs.

Covers the request format and credentials each provider expects, response
parsing, the conformance kit, and failure handling: 429 with Retry-After, 5xx,
timeouts, garbage and wrongly shaped JSON, refused credentials, unreachable
hosts. Keys never appear in error messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gen_searcher_core.http_retry import parse_retry_after
from search_tools.backends import SearchBackendError, create_backend
from search_tools.testing import ConformanceSpec, check_failure, conformance_params
from tests.search.providers import BRAVE_KEY, SERPER_KEY, Failure, ProviderState, brave_app, searxng_app, serper_app
from tests.support.loopback import free_port, serve_app

PROVIDERS = ["serper", "searxng", "brave"]
SPEC = ConformanceSpec(query_with_results="eiffel tower", query_without_results="qwzx nomatch", max_k=10)


@dataclass
class Provider:
    name: str
    url: str
    state: ProviderState
    key: str | None

    def settings_overrides(self, **search: Any) -> dict[str, Any]:
        options: dict[str, Any] = {"search": {"backend": self.name, **search}}
        if self.name == "serper":
            options["serper_api_key"] = self.key
            options["search"]["serper_url"] = self.url
        elif self.name == "brave":
            options["brave_api_key"] = self.key
            options["search"]["brave_url"] = self.url + "/res/v1"
        else:
            options["searxng_url"] = self.url
        return options


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[str, ProviderState]]]:
    states = {name: ProviderState() for name in PROVIDERS}
    apps = {"serper": serper_app, "searxng": searxng_app, "brave": brave_app}
    with (
        serve_app(apps["serper"](states["serper"])) as serper_url,
        serve_app(apps["searxng"](states["searxng"])) as searxng_url,
        serve_app(apps["brave"](states["brave"])) as brave_url,
    ):
        yield {
            "serper": (serper_url, states["serper"]),
            "searxng": (searxng_url, states["searxng"]),
            "brave": (brave_url, states["brave"]),
        }


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest, servers: dict[str, tuple[str, ProviderState]]) -> Iterator[Provider]:
    url, state = servers[request.param]
    state.reset()
    keys = {"serper": SERPER_KEY, "brave": BRAVE_KEY, "searxng": None}
    yield Provider(request.param, url, state, keys[request.param])
    state.reset()


@pytest.fixture
async def backend(provider: Provider, make_settings):  # type: ignore[no-untyped-def]
    made = create_backend(make_settings(**provider.settings_overrides()).backend_config())
    yield made
    await made.aclose()


# ---------------------------------------------------------------- conformance and formats


@pytest.mark.anyio
@pytest.mark.parametrize("check", conformance_params())
async def test_conformance(check, backend) -> None:  # type: ignore[no-untyped-def]
    await check(backend, SPEC)


@pytest.mark.anyio
async def test_request_format_and_credentials(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    hits = await backend.search("Eiffel Tower", 3)
    assert [hit.position for hit in hits] == [1, 2, 3]
    assert hits[0].url == "https://en.wikipedia.org/wiki/Eiffel_Tower"
    assert hits[0].snippet == "The Eiffel Tower is a wrought-iron lattice tower in Paris, France."  # markup stripped
    seen = provider.state.requests[-1]
    if provider.name == "serper":
        assert (seen["method"], seen["path"]) == ("POST", "/search")
        assert seen["headers"]["x-api-key"] == SERPER_KEY
        assert json.loads(seen["body"]) == {"q": "Eiffel Tower", "num": 3}
        assert hits[0].date == "Mar 31, 1889"
    elif provider.name == "searxng":
        assert (seen["method"], seen["path"]) == ("GET", "/search")
        assert seen["params"] == {"q": "Eiffel Tower", "format": "json", "categories": "general", "pageno": "1"}
        assert hits[0].date == "1889-03-31T00:00:00"
    else:
        assert (seen["method"], seen["path"]) == ("GET", "/res/v1/web/search")
        assert seen["headers"]["x-subscription-token"] == BRAVE_KEY
        assert seen["params"] == {"q": "Eiffel Tower", "count": "3"}
        assert hits[0].date == "March 31, 1889"
    assert seen["headers"]["user-agent"].startswith("Gen-Searcher/")


@pytest.mark.anyio
async def test_image_candidates(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    hits = await backend.image_search("eiffel tower", 4)
    assert len(hits) == 4
    assert hits[0].image_url == "https://upload.wikimedia.org/eiffel.jpg"
    assert hits[0].page_url == "https://en.wikipedia.org/wiki/Eiffel_Tower"
    assert (
        hits[1].image_url == "https://www.toureiffel.paris/summit.png"
    )  # protocol-relative src made absolute (SearXNG)
    assert hits[0].title == "Eiffel Tower - Wikipedia"
    assert hits[0].width and hits[0].height
    assert hits[0].thumbnail_url
    seen = provider.state.requests[-1]
    if provider.name == "serper":
        assert seen["path"] == "/images" and json.loads(seen["body"]) == {"q": "eiffel tower", "num": 4}
    elif provider.name == "searxng":
        assert seen["params"]["categories"] == "images"
    else:
        assert seen["path"] == "/res/v1/images/search"


# ---------------------------------------------------------------- failures


@pytest.mark.anyio
async def test_429_honours_retry_after_then_succeeds(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.failures.append(Failure(429, {"Retry-After": "1"}, '{"message": "Too many requests"}'))
    started = time.monotonic()
    hits = await backend.search("eiffel", 2)
    elapsed = time.monotonic() - started
    assert len(hits) == 2
    assert len(provider.state.requests) == 2
    assert 0.9 <= elapsed < 60  # it waited the second it was told to, and not an hour


@pytest.mark.anyio
async def test_429_exhausted_is_a_clear_rate_limit_error(provider: Provider, make_settings) -> None:  # type: ignore[no-untyped-def]
    provider.state.always = Failure(429, {"Retry-After": "0"})
    backend = create_backend(make_settings(**provider.settings_overrides(max_retries=2)).backend_config())
    error = await check_failure(backend, secrets=[provider.key or "no-key"])
    assert error.kind == "rate_limited"
    assert str(error) == f"{provider.name} search failed (rate_limited): rate limited (HTTP 429) after retries"
    assert len(provider.state.requests) == 3
    await backend.aclose()


@pytest.mark.anyio
async def test_long_retry_after_fails_at_once_instead_of_hanging(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.always = Failure(429, {"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(SearchBackendError, match="retry after 3600 s") as info:
        await backend.search("eiffel", 2)
    assert info.value.kind == "rate_limited"
    assert len(provider.state.requests) == 1
    assert time.monotonic() - started < 60  # far below the hour it was told to wait


@pytest.mark.anyio
async def test_5xx_is_retried_then_succeeds(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.failures.extend([Failure(500), Failure(503)])
    hits = await backend.search("eiffel", 1)
    assert len(hits) == 1
    assert len(provider.state.requests) == 3


@pytest.mark.anyio
async def test_5xx_exhausted(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.always = Failure(502, body="upstream exploded")
    error = await check_failure(backend, secrets=[provider.key or "no-key"], images=True)
    assert error.kind == "unavailable"
    assert "HTTP 502" in str(error)
    assert len(provider.state.requests) == 4  # 1 + max_retries (3)


@pytest.mark.anyio
async def test_timeout(provider: Provider, make_settings) -> None:  # type: ignore[no-untyped-def]
    provider.state.delay_s = 60  # the provider never answers in time
    backend = create_backend(
        make_settings(**provider.settings_overrides(timeout_s=0.2, max_retries=1)).backend_config()
    )
    started = time.monotonic()
    error = await check_failure(backend, secrets=[provider.key or "no-key"])
    assert error.kind == "timeout"
    assert "no answer from http://127.0.0.1:" in str(error)
    assert time.monotonic() - started < 30  # two attempts would take 120 s if we waited for the server
    await backend.aclose()


@pytest.mark.anyio
async def test_garbage_json(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.garbage = True
    error = await check_failure(backend)
    assert error.kind == "bad_response"
    assert "did not answer JSON" in str(error)
    assert len(provider.state.requests) == 1  # not retried


@pytest.mark.anyio
async def test_undecodable_body(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.always = Failure(200, headers={"Content-Encoding": "gzip"}, body="not gzip at all")
    error = await check_failure(backend, secrets=[provider.key] if provider.key else [])
    assert error.kind == "bad_response"
    assert "unreadable answer from http://127.0.0.1:" in str(error) and "DecodingError" in str(error)


@pytest.mark.anyio
async def test_wrongly_shaped_json(provider: Provider, backend) -> None:  # type: ignore[no-untyped-def]
    provider.state.wrong_shape = True
    error = await check_failure(backend)
    assert error.kind == "bad_response"
    assert "unexpected response shape" in str(error)
    with pytest.raises(SearchBackendError, match="unexpected response shape"):
        await backend.image_search("eiffel", 2)


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["serper", "brave"])
async def test_rejected_key_never_leaks(name: str, servers, make_settings) -> None:  # type: ignore[no-untyped-def]
    url, state = servers[name]
    state.reset()
    wrong_key = "sk-wrong-key-0123456789abcdef"
    provider = Provider(name, url, state, wrong_key)
    backend = create_backend(make_settings(**provider.settings_overrides()).backend_config())
    error = await check_failure(backend, secrets=[wrong_key])
    assert error.kind == "auth"
    assert state.requests and wrong_key in json.dumps(state.requests[-1]["headers"])  # it was sent ...
    assert wrong_key not in repr(error.args) + str(error)  # ... and the provider echoed it, but we do not
    assert len(state.requests) == 1  # auth failures are not retried
    await backend.aclose()


@pytest.mark.anyio
async def test_searxng_without_json_format_says_how_to_fix_it(servers, make_settings) -> None:  # type: ignore[no-untyped-def]
    url, state = servers["searxng"]
    state.reset()
    state.json_enabled = False
    backend = create_backend(make_settings(searxng_url=url, search={"backend": "searxng"}).backend_config())
    with pytest.raises(SearchBackendError, match=r"search\.formats") as info:
        await backend.search("eiffel", 3)
    assert info.value.kind == "config"
    await backend.aclose()
    state.reset()


@pytest.mark.anyio
async def test_searxng_url_credentials_never_leak(make_settings) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nothing listens here
    backend = create_backend(
        make_settings(
            searxng_url=f"http://admin:pa55w0rd-zz@127.0.0.1:{port}", search={"backend": "searxng", "max_retries": 1}
        ).backend_config()
    )
    error = await check_failure(backend, secrets=["pa55w0rd-zz"])
    assert error.kind == "unavailable"
    assert f"could not reach http://127.0.0.1:{port}" in str(error)
    await backend.aclose()


@pytest.mark.anyio
async def test_searxng_url_credentials_become_basic_auth(servers, make_settings, caplog) -> None:  # type: ignore[no-untyped-def]
    url, state = servers["searxng"]
    state.reset()
    backend = create_backend(
        make_settings(
            searxng_url=url.replace("http://", "http://admin:pa55w0rd-zz@"), search={"backend": "searxng"}
        ).backend_config()
    )
    caplog.set_level("DEBUG", logger="httpx")  # the CLI quiets httpx; this test reads its request log
    with caplog.at_level("DEBUG"):
        hits = await backend.search("eiffel tower", 3)
        images = await backend.image_search("eiffel tower", 3)
    await backend.aclose()
    assert hits and images
    # Credentials travel as a header, never in the request URL that httpx logs, nor in absolutized hit URLs.
    assert state.requests[-1]["headers"]["authorization"] == "Basic YWRtaW46cGE1NXcwcmQteno="
    shown = caplog.text + json.dumps([hit.to_dict() for hit in [*hits, *images]])
    assert "pa55w0rd-zz" not in shown and "admin:" not in shown
    assert any("HTTP Request" in record.getMessage() for record in caplog.records)  # the log was really checked
    state.reset()


@pytest.mark.anyio
async def test_unreachable_provider(make_settings) -> None:  # type: ignore[no-untyped-def]
    backend = create_backend(
        make_settings(
            serper_api_key=SERPER_KEY,
            search={"backend": "serper", "serper_url": f"http://127.0.0.1:{free_port()}", "max_retries": 1},
        ).backend_config()
    )
    error = await check_failure(backend, secrets=[SERPER_KEY])
    assert error.kind == "unavailable"
    await backend.aclose()


@pytest.mark.anyio
async def test_rate_limit_spaces_requests(provider: Provider, make_settings) -> None:  # type: ignore[no-untyped-def]
    backend = create_backend(make_settings(**provider.settings_overrides(rate_limit_per_s=5.0)).backend_config())
    started = time.monotonic()
    for _ in range(8):
        await backend.search("eiffel", 1)
    # a bucket of 5 tokens refilled at 5/s: the last 3 requests wait about 0.6 s in all
    assert time.monotonic() - started >= 0.45
    await backend.aclose()


def test_missing_credentials_are_config_errors(make_settings) -> None:  # type: ignore[no-untyped-def]
    for name, variable in [("serper", "SERPER_API_KEY"), ("brave", "BRAVE_API_KEY"), ("searxng", "SEARXNG_URL")]:
        with pytest.raises(SearchBackendError, match=variable) as info:
            create_backend(make_settings(search={"backend": name}).backend_config())
        assert info.value.kind == "config"


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    assert 100 < parse_retry_after(future) <= 121  # type: ignore[operator]
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0


@pytest.mark.parametrize("url", ["ftp://search.example", "not a url", "http://[::1"])
def test_bad_provider_urls_are_config_errors(url: str, make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SearchBackendError, match="must be an http") as info:
        create_backend(make_settings(searxng_url=url, search={"backend": "searxng"}).backend_config())
    assert info.value.kind == "config"
