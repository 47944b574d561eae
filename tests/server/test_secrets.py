"""Provider credentials never reach a tool result, the server's logs or /metrics.

The fake providers answer a wrong key by echoing it back, as real ones sometimes
do, and a SearXNG URL carries a password; the server is the production HTTP app.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from tests.search.providers import Failure, ProviderState, brave_app, searxng_app, serper_app
from tests.support.loopback import serve_app
from tests.support.tool_server import run_tool_server

pytestmark = pytest.mark.anyio

SECRET = "sk-live-0123456789abcdef"


def _overrides(name: str, url: str) -> dict[str, Any]:
    search: dict[str, Any] = {"backend": name, "max_retries": 0}
    if name == "serper":
        return {"serper_api_key": SECRET, "search": {**search, "serper_url": url}}
    if name == "brave":
        return {"brave_api_key": SECRET, "search": {**search, "brave_url": url + "/res/v1"}}
    return {"searxng_url": url.replace("http://", f"http://admin:{SECRET}@"), "search": search}


@pytest.mark.parametrize(("name", "app"), [("serper", serper_app), ("brave", brave_app), ("searxng", searxng_app)])
async def test_keys_stay_out_of_results_logs_and_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, app: Any
) -> None:
    state = ProviderState()
    if name == "searxng":  # SearXNG has no key to refuse: make it fail while echoing what it received
        state.always = Failure(400, body=f'{{"error": "bad request from {SECRET}"}}')
    caplog.set_level(logging.DEBUG, logger="httpx")  # its request log names URLs; the CLI may have quieted it
    with (
        caplog.at_level(logging.DEBUG),
        serve_app(app(state)) as provider_url,
        run_tool_server(tmp_path, **_overrides(name, provider_url)) as ts,
    ):
        async with Client(ts.url) as client:
            result = await client.call_tool("search", {"queries": ["eiffel tower", "golden gate"]})
        async with httpx.AsyncClient(base_url=ts.base_url) as http:
            metrics = (await http.get("/metrics")).text
    assert state.requests, "the provider was really called"
    assert result.is_error
    errors = [entry["error"] for entry in result.structured_content["results"]]
    assert all(error and error.startswith(f"{name} search failed") for error in errors)
    shown = [result.model_dump_json(), metrics, caplog.text]
    assert all(SECRET not in text for text in shown)
    assert "HTTP Request" in caplog.text  # the provider requests were logged, and checked
    assert f'gen_searcher_backend_errors_total{{backend="{name}"}} 2.0' in metrics
