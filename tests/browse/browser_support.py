"""Shared pieces of the fetcher tests: the JavaScript web, a resolver that rebinds, fetcher builders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from safe_io.fetcher import GuardedFetcher, system_resolver
from safe_io.netguard import AddressPolicy
from search_tools.fetchers.browser import BrowserFetcher, BrowserOptions, find_chromium
from tests.browse.conftest import Web, make_fetcher
from tests.browse.js_web import JsWeb, build_js_app
from tests.support.loopback import serve_app

REBIND_HOST = "rebind.test"
THIRD_PARTY_HOST = JsWeb.third_party_host


async def rebinding_resolver(host: str, port: int) -> list[str]:
    """``rebind.test`` answers 127.0.0.1 (a public-looking name that points inside), and so does the JavaScript
    web's third-party name; other names resolve normally."""
    if host in (REBIND_HOST, THIRD_PARTY_HOST):
        return ["127.0.0.1"]
    return await system_resolver(host, port)


@pytest.fixture(scope="session", name="js_web")
def js_web_server(web: Web) -> Iterator[JsWeb]:
    holder = JsWeb(internal_port=int(web.internal_base.rsplit(":", 1)[1]))
    with serve_app(build_js_app(holder)) as base:
        holder.base = base
        holder.port = int(base.rsplit(":", 1)[1])
        yield holder


def allowed(web: Web, js_web: JsWeb) -> list[str]:
    """The two test webs are the only internal addresses the guard lets through; the internal service is not."""
    return [f"127.0.0.1:{web.port}", f"127.0.0.1:{js_web.port}"]


def make_direct(web: Web, js_web: JsWeb, **kwargs: Any) -> GuardedFetcher:
    policy = AddressPolicy.from_strings(False, allowed(web, js_web))
    return make_fetcher(web, policy=policy, resolver=rebinding_resolver, **kwargs)


def make_browser(direct: GuardedFetcher, web: Web, js_web: JsWeb, events: Any = None, **options: Any) -> BrowserFetcher:
    settings: dict[str, Any] = dict(executable=find_chromium(), contexts=2, page_timeout_s=20.0, settle_s=4.0)
    settings.update(options)
    policy = AddressPolicy.from_strings(False, allowed(web, js_web))
    on_event = events.fetcher_event if events is not None else None
    return BrowserFetcher(direct, policy, BrowserOptions(**settings), resolver=rebinding_resolver, on_event=on_event)
