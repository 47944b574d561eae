"""The search tool over a real in-process MCP client session."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from mcp_server.server import build_server
from mcp_server.services import open_services
from mcp_server.settings import Settings
from tests.support.tool_server import tool_server_settings

pytestmark = pytest.mark.anyio


def _flat(schema: dict) -> None:
    """verl's tool schema accepts only type, description and enum per property: no anyOf/oneOf/$ref."""
    assert schema["type"] == "object"
    for name, prop in schema["properties"].items():
        assert "type" in prop, name
        assert not {"anyOf", "oneOf", "allOf", "$ref"} & set(prop), name


async def test_lists_search_with_a_flat_schema(settings: Settings) -> None:
    async with open_services(settings) as services, Client(build_server(services)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    schema = tools["search"].input_schema
    _flat(schema)
    assert schema["required"] == ["queries"]
    assert schema["properties"]["queries"]["type"] == "array"
    assert schema["properties"]["queries"]["items"]["type"] == "string"
    assert schema["properties"]["queries"]["maxItems"] == 5
    assert schema["properties"]["top_k"]["default"] == 5
    assert tools["search"].description


async def test_search_returns_ranked_hits_per_query_in_order(settings: Settings) -> None:
    async with open_services(settings) as services, Client(build_server(services)) as client:
        result = await client.call_tool("search", {"queries": ["Golden Gate bridge", "Eiffel tower Paris"], "top_k": 2})
    assert not result.is_error
    results = result.structured_content["results"]
    assert [entry["query"] for entry in results] == ["Golden Gate bridge", "Eiffel tower Paris"]
    assert results[0]["error"] is None and results[1]["error"] is None
    assert results[0]["hits"][0]["url"].endswith("golden-gate.md")
    assert results[1]["hits"][0]["url"].endswith("eiffel-tower.md")
    assert all(len(entry["hits"]) <= 2 for entry in results)
    first = results[0]["hits"][0]
    assert set(first) >= {"title", "url", "snippet", "position"} and first["position"] == 1
    # One compact text block a model reads: both queries, titles and URLs, in order.
    (text,) = result.content
    assert text.type == "text"
    assert text.text.index("Golden Gate bridge") < text.text.index("Eiffel tower Paris")
    assert first["url"] in text.text and first["title"] in text.text


async def test_a_query_without_results_is_not_an_error(settings: Settings) -> None:
    async with open_services(settings) as services, Client(build_server(services)) as client:
        result = await client.call_tool("search", {"queries": ["xylophone quantum zebra"]})
    assert not result.is_error
    assert result.structured_content["results"][0] == {"query": "xylophone quantum zebra", "hits": [], "error": None}
    assert "No results." in result.content[0].text


async def test_one_failing_query_reports_its_own_error(tmp_path: Path, index_db: Path) -> None:
    # Record one query, then replay: the unrecorded query fails, the recorded one still returns.
    record = tool_server_settings(tmp_path, index=index_db)
    async with open_services(record) as services, Client(build_server(services)) as client:
        assert not (await client.call_tool("search", {"queries": ["Mount Fuji"]})).is_error
    replay = tool_server_settings(tmp_path, index=index_db, cache={"mode": "replay"})
    async with open_services(replay) as services, Client(build_server(services)) as client:
        result = await client.call_tool("search", {"queries": ["Mount Fuji", "Sydney Opera House"]})
        assert not result.is_error
        fuji, sydney = result.structured_content["results"]
        assert fuji["error"] is None and fuji["hits"][0]["url"].endswith("mount-fuji.md")
        assert sydney["hits"] == [] and "replay" in sydney["error"]
        assert "replay" in result.content[0].text
        # Every query failing makes the whole call an error.
        only_missing = await client.call_tool("search", {"queries": ["Sydney Opera House"]})
        assert only_missing.is_error and "replay" in only_missing.content[0].text


BAD_ARGUMENTS = [
    ({}, "queries: Field required"),
    ({"queries": []}, "queries: List should have at least 1 item"),
    ({"queries": ["a", "b", "c", "d", "e", "f"]}, "queries: List should have at most 5 items"),
    ({"queries": ["x" * 501]}, "queries[0]: String should have at most 500 characters"),
    ({"queries": ["ok", "   "]}, "queries[1]: String should have at least 1 character"),
    ({"queries": "eiffel tower"}, "queries: Input should be a valid list"),
    ({"queries": [42]}, "queries[0]: Input should be a valid string"),
    ({"queries": ["ok"], "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
    ({"queries": ["ok"], "top_k": 11}, "top_k: Input should be less than or equal to 10"),
    ({"queries": ["ok"], "top_k": "many"}, "top_k: Input should be a valid integer"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
async def test_bad_arguments_get_a_clear_error_and_the_server_keeps_serving(
    settings: Settings, arguments: dict, message: str
) -> None:
    async with open_services(settings) as services, Client(build_server(services)) as client:
        result = await client.call_tool("search", arguments)
        assert result.is_error
        (content,) = result.content
        assert content.text.startswith("Invalid arguments for tool 'search': ")
        assert message in content.text
        assert "pydantic.dev" not in content.text and "x" * 501 not in content.text
        after = await client.call_tool("search", {"queries": ["Eiffel Tower"]})
        assert not after.is_error


async def test_unknown_tool_is_an_error_and_counted_as_unknown(settings: Settings) -> None:
    async with open_services(settings) as services, Client(build_server(services)) as client:
        result = await client.call_tool("no_such_tool", {})
        assert result.is_error and "no_such_tool" in result.content[0].text
        assert services.metrics.value("gen_searcher_tool_calls_total", {"tool": "unknown", "outcome": "error"}) == 1


async def test_tool_calls_are_counted_and_timed(settings: Settings) -> None:
    async with open_services(settings) as services, Client(build_server(services)) as client:
        for _ in range(3):
            await client.call_tool("search", {"queries": ["Eiffel Tower"]})
        await client.call_tool("search", {"queries": []})
        metrics = services.metrics
        assert metrics.value("gen_searcher_tool_calls_total", {"tool": "search", "outcome": "ok"}) == 3
        assert metrics.value("gen_searcher_tool_calls_total", {"tool": "search", "outcome": "error"}) == 1
        assert metrics.value("gen_searcher_tool_latency_seconds_count", {"tool": "search"}) == 4
        # The first call missed the cache; the two repeats hit it.
        assert metrics.value("gen_searcher_cache_events_total", {"namespace": "search", "result": "hit"}) >= 2


def test_unexpected_failures_are_reported_without_internals() -> None:
    from mcp_server.tools.search import describe_failure
    from search_tools.backends.base import SearchBackendError

    assert describe_failure(SearchBackendError("serper", "timeout", "no answer in 15s")) == (
        "serper search failed (timeout): no answer in 15s"
    )
    hidden = describe_failure(RuntimeError("connection string postgres://user:hunter2@db"))
    assert hidden == "search failed: internal error (RuntimeError)"


async def test_every_tool_schema_is_flat(settings: Settings) -> None:
    """The contract for all tools: verl's tool schema accepts only type, description and enum per property."""
    async with open_services(settings) as services, Client(build_server(services)) as client:
        tools = (await client.list_tools()).tools
    assert tools
    for tool in tools:
        assert tool.description, tool.name
        _flat(tool.input_schema)
