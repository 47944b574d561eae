"""The HTTP app on loopback: MCP transports, health, metrics, images, auth and Host checks."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from tests.support.tool_server import run_tool_server

pytestmark = pytest.mark.anyio

SEARCH = {"queries": ["Eiffel Tower"], "top_k": 3}


def _eiffel(result) -> None:  # type: ignore[no-untyped-def]
    assert not result.is_error, result.content
    hits = result.structured_content["results"][0]["hits"]
    assert hits[0]["url"].endswith("eiffel-tower.md")


@pytest.mark.parametrize(
    ("stateless", "json_response"),
    [(False, False), (True, False), (True, True)],
    ids=["stateful", "stateless", "stateless-json"],
)
async def test_search_over_streamable_http(
    tmp_path: Path, index_db: Path, stateless: bool, json_response: bool
) -> None:
    with run_tool_server(tmp_path, index=index_db, stateless=stateless, server={"json_response": json_response}) as ts:
        async with Client(ts.url) as client:
            _eiffel(await client.call_tool("search", SEARCH))
            # A bad call answers an error; the same session keeps working.
            assert (await client.call_tool("search", {"queries": []})).is_error
            _eiffel(await client.call_tool("search", SEARCH))
        async with Client(ts.url) as second:  # a fresh session on the same server
            _eiffel(await second.call_tool("search", SEARCH))


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_stateless_mode_issues_no_session(tmp_path: Path, index_db: Path, stateless: bool) -> None:
    with run_tool_server(tmp_path, index=index_db, stateless=stateless) as ts:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                ts.url, json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"}
            )
    assert response.status_code == 200
    assert ("mcp-session-id" in response.headers) is not stateless


async def test_search_over_legacy_sse(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db) as ts:
        async with Client(sse_client(ts.sse_url)) as client:
            tools = await client.list_tools()
            assert "search" in {tool.name for tool in tools.tools}
            _eiffel(await client.call_tool("search", SEARCH))


async def test_healthz_metrics_and_unknown_paths(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db) as ts:
        async with Client(ts.url) as client:
            await client.call_tool("search", SEARCH)
            await client.call_tool("search", SEARCH)
            await client.call_tool("search", {"queries": ["x" * 600]})
        async with httpx.AsyncClient(base_url=ts.base_url) as http:
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            metrics = await http.get("/metrics")
            assert (await http.get("/nothing-here")).status_code == 404
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'gen_searcher_tool_calls_total{outcome="ok",tool="search"} 2.0' in text
    assert 'gen_searcher_tool_calls_total{outcome="error",tool="search"} 1.0' in text
    assert 'gen_searcher_tool_latency_seconds_count{tool="search"} 3.0' in text
    assert 'gen_searcher_cache_events_total{namespace="search",result="hit"}' in text
    assert 'gen_searcher_cache_events_total{namespace="search",result="miss"} 1.0' in text
    # Two identical searches (the second a cache hit) and one rejected call: one provider request.
    assert 'gen_searcher_backend_calls_total{backend="local"} 1.0' in text


async def test_full_images_by_id(tmp_path: Path, index_db: Path) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 30, 30)).save(picture, format="PNG")
    with run_tool_server(tmp_path, index=index_db) as ts:
        stored = await ts.services.images.put(picture.getvalue(), "image/png", {"source": "test"})
        async with httpx.AsyncClient(base_url=ts.base_url) as http:
            found = await http.get(f"/images/{stored.id}")
            unknown = await http.get("/images/img_0123456789abcdef")
            invalid = await http.get("/images/..%2F..%2Fetc%2Fpasswd")
            malformed = await http.get("/images/img_XYZ")
    assert found.status_code == 200 and found.headers["content-type"] == "image/png"
    assert found.content == picture.getvalue()
    assert "immutable" in found.headers["cache-control"]
    assert unknown.status_code == 404 and "unknown image id" in unknown.json()["error"]
    assert invalid.status_code == 404
    assert malformed.status_code == 404 and "not an image id" in malformed.json()["error"]


async def test_bearer_tokens(tmp_path: Path, index_db: Path) -> None:
    tokens = ["first-secret-token", "second-secret-token"]
    with run_tool_server(tmp_path, index=index_db, auth_tokens=tokens) as ts:
        async with httpx.AsyncClient(base_url=ts.base_url) as http:
            assert (await http.get("/healthz")).status_code == 200  # liveness stays open
            for path in ("/metrics", "/images/img_0123456789abcdef", "/sse"):
                missing = await http.get(path)
                assert missing.status_code == 401, path
                assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = await http.post("/mcp", json={}, headers={"Authorization": "Bearer not-a-token"})
            assert wrong.status_code == 401
            basic = await http.get("/metrics", headers={"Authorization": "Basic Zmlyc3Qtc2VjcmV0LXRva2Vu"})
            assert basic.status_code == 401
            ok = await http.get("/metrics", headers={"Authorization": "Bearer second-secret-token"})
            assert ok.status_code == 200
        headers = {"Authorization": "Bearer first-secret-token"}
        async with (
            httpx2.AsyncClient(headers=headers) as authed,
            Client(streamable_http_client(ts.url, http_client=authed)) as client,
        ):
            _eiffel(await client.call_tool("search", SEARCH))
        async with Client(sse_client(ts.sse_url, headers=headers)) as client:
            _eiffel(await client.call_tool("search", SEARCH))
        async with httpx.AsyncClient(base_url=ts.base_url, headers=headers) as http:
            exposed = (await http.get("/metrics")).text
    assert "secret-token" not in exposed


async def test_host_and_origin_checks(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db, allowed_hosts=["search.internal", "lb.example:8443"]) as ts:
        async with httpx.AsyncClient(base_url=ts.base_url) as http:
            assert (await http.get("/metrics", headers={"Host": "evil.example"})).status_code == 421
            assert (await http.post("/mcp", json={}, headers={"Host": "evil.example"})).status_code == 421
            assert (await http.get("/metrics", headers={"Host": "search.internal:9000"})).status_code == 200
            assert (await http.get("/metrics", headers={"Host": "lb.example:8443"})).status_code == 200
            assert (await http.get("/metrics", headers={"Host": "lb.example:80"})).status_code == 421
            assert (await http.get("/metrics", headers={"Host": "localhost:1234"})).status_code == 200
            cross_site = await http.get("/metrics", headers={"Origin": "http://evil.example"})
            assert cross_site.status_code == 403
            same_site = await http.get("/metrics", headers={"Origin": ts.base_url})
            assert same_site.status_code == 200
            # Health checks from a load balancer use whatever Host it likes.
            assert (await http.get("/healthz", headers={"Host": "10.1.2.3:8000"})).status_code == 200


async def test_garbage_requests_get_errors_and_the_server_keeps_serving(tmp_path: Path, index_db: Path) -> None:
    with run_tool_server(tmp_path, index=index_db) as ts:
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        async with httpx.AsyncClient() as http:
            not_json = await http.post(ts.url, content=b"{not json", headers=headers)
            wrong_type = await http.post(ts.url, content=b"{}", headers={**headers, "Content-Type": "text/plain"})
            no_session = await http.post(
                ts.url,
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                headers={**headers, "mcp-session-id": "nope"},
            )
        assert 400 <= not_json.status_code < 500
        assert wrong_type.status_code == 400
        assert 400 <= no_session.status_code < 500
        async with Client(ts.url) as client:
            _eiffel(await client.call_tool("search", SEARCH))
