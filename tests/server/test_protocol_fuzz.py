"""Fuzzed raw JSON-RPC against the real HTTP server: every request is answered, and the server keeps serving.

Tool arguments are drawn from each tool's own input schema (``schema_strategy``)
and from arbitrary JSON; envelopes are drawn malformed as well as well-formed
(ids of every JSON type, unknown methods, params of the wrong shape, batches,
bytes that are not JSON). The server runs with a short request deadline, so a
request that would hang shows up as an unanswered one. Examples are bounded
(``MAX_EXAMPLES`` per strategy) and derandomized, so the run is repeatable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.raw_mcp import answer_of, call, open_session
from tests.server.schema_strategy import JSON_VALUES as json_values
from tests.server.schema_strategy import from_schema
from tests.support.tool_server import run_tool_server

MAX_EXAMPLES = 100
DEADLINE_S = 5.0
METHODS = [
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "initialize",
]

ids = st.integers(min_value=-(2**53), max_value=2**53) | st.text(min_size=0, max_size=30)
bad_ids = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


def _envelopes() -> st.SearchStrategy[Any]:
    """Requests and notifications with any method and params, and messages that are no request at all."""
    params = json_values | st.fixed_dictionaries({}, optional={"name": json_values, "arguments": json_values})
    request = st.fixed_dictionaries(
        {"jsonrpc": st.just("2.0"), "id": ids, "method": st.sampled_from(METHODS) | st.text(max_size=20)},
        optional={"params": params},
    )
    broken = st.fixed_dictionaries(
        {},
        optional={
            "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values,
            "id": ids | bad_ids,
            "method": st.sampled_from(METHODS) | json_values,
            "params": params,
            "result": json_values,
        },
    )
    return request | broken | st.lists(request | broken, min_size=0, max_size=3) | json_values


def _expects_answer(message: Any) -> bool:
    """A well-formed request (string or integer id and a string method) must get an answer with its id."""
    if not isinstance(message, dict) or "id" not in message or not isinstance(message.get("method"), str):
        return False
    request_id = message["id"]
    return message.get("jsonrpc") == "2.0" and isinstance(request_id, (int, str)) and not isinstance(request_id, bool)


def test_fuzzed_requests_all_get_answers_and_the_server_keeps_serving(tmp_path: Path, index_db: Path) -> None:
    server = {"request_deadline_s": DEADLINE_S}
    with run_tool_server(tmp_path, index=index_db, server=server) as ts, httpx.Client(timeout=60) as http:
        session = open_session(http, ts.url)
        tools = call(http, ts.url, session, "tools/list", {})["result"]["tools"]
        assert {tool["name"] for tool in tools} >= {"search", "browse", "image_search"}

        def post(body: bytes) -> httpx.Response:
            response = http.post(ts.url, content=body, headers=session)  # a hang ends in httpx's timeout: a failure
            assert response.status_code < 500, (body[:300], response.status_code, response.text[:300])
            return response

        def check_answered(message: Any) -> None:
            response = post(json.dumps(message).encode())
            if _expects_answer(message):
                answer = answer_of(response)
                assert isinstance(answer, dict) and answer.get("id") == message["id"], (message, response.text[:300])
                assert ("result" in answer) != ("error" in answer), answer
                if "error" in answer:
                    assert "Traceback" not in answer["error"]["message"], answer

        fuzz = settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )

        calls = st.one_of(
            [
                st.fixed_dictionaries(
                    {
                        "name": st.just(tool["name"]),
                        "arguments": from_schema(tool["inputSchema"])
                        | st.dictionaries(st.text(max_size=12), json_values),
                    }
                )
                for tool in tools
            ]
        )

        @fuzz
        @given(params=calls, request_id=ids)
        def tool_calls(params: Any, request_id: Any) -> None:
            check_answered({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})

        tool_calls()

        @fuzz
        @given(message=_envelopes())
        def envelopes(message: Any) -> None:
            check_answered(message)

        envelopes()

        @fuzz
        @given(body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
        def raw_bytes(body: bytes) -> None:
            post(body)

        raw_bytes()

        # Still serving: health, and a proper call in the same session.
        assert httpx.get(ts.base_url + "/healthz").json() == {"status": "ok"}
        ok = call(http, ts.url, session, "tools/call", {"name": "search", "arguments": {"queries": ["eiffel"]}})
        assert not ok["result"]["isError"], ok
