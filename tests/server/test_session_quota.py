"""Sessions capped per client: one client cannot fill the server's sessions and lock the others out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.server.raw_mcp import MCP_HEADERS, initialize_body
from tests.support.tool_server import run_tool_server

PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}


def _open(http: httpx.Client, url: str, token: str | None = None) -> httpx.Response:
    headers = {**MCP_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    return http.post(url, json=initialize_body(), headers=headers)


def _alive(http: httpx.Client, url: str, session: str, token: str | None = None) -> bool:
    headers = {**MCP_HEADERS, "mcp-session-id": session, **({"Authorization": f"Bearer {token}"} if token else {})}
    status = http.post(url, json=PING, headers=headers).status_code
    assert status in (200, 404), status
    return status == 200


@contextlib.contextmanager
def _busy(http: httpx.Client, url: str, session: str) -> Iterator[None]:
    """Holds the session's standalone SSE stream open: a request in flight, so the session is not idle."""
    headers = {"Accept": "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
    with http.stream("GET", url, headers=headers) as stream:
        assert stream.status_code == 200, stream.status_code
        yield


def _open_when_served(http: httpx.Client, url: str, limit_s: float = 30.0) -> httpx.Response:
    """``_open`` again while the answer is 503, for at most ``limit_s`` (a generous bound, not a timing)."""
    deadline = time.monotonic() + limit_s
    answer = _open(http, url)
    while answer.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = _open(http, url)
    return answer


def test_a_client_at_its_cap_loses_its_longest_idle_session_not_the_others(tmp_path: Path, index_db: Path) -> None:
    tokens = ("tok-one-0123456789", "tok-two-0123456789")
    server = {"max_sessions": 3, "max_sessions_per_client": 2}
    with (
        run_tool_server(tmp_path, index=index_db, auth_tokens=tokens, server=server) as ts,
        httpx.Client(timeout=30) as http,
    ):
        one = [_open(http, ts.url, tokens[0]).headers["mcp-session-id"] for _ in range(2)]
        assert _alive(http, ts.url, one[1], tokens[0])  # one[0] is now the longest idle
        third = _open(http, ts.url, tokens[0])  # past its cap: its own longest-idle session makes room
        assert third.status_code == 200, third.text
        assert not _alive(http, ts.url, one[0], tokens[0]) and _alive(http, ts.url, one[1], tokens[0])
        # The other client still finds room: the first holds 2 of the 3 sessions, not all of them.
        other = _open(http, ts.url, tokens[1])
        assert other.status_code == 200, other.text
        # The server's own cap still holds for everyone.
        full = _open(http, ts.url, tokens[1])
        assert full.status_code == 503 and _alive(http, ts.url, other.headers["mcp-session-id"], tokens[1])


def test_a_client_whose_sessions_are_all_busy_is_refused_then_served(tmp_path: Path, index_db: Path) -> None:
    server = {"max_sessions": 10, "max_sessions_per_client": 2}
    with run_tool_server(tmp_path, index=index_db, server=server) as ts, httpx.Client(timeout=30) as http:
        first, second = (_open(http, ts.url).headers["mcp-session-id"] for _ in range(2))
        with _busy(http, ts.url, first), _busy(http, ts.url, second):
            refused = _open(http, ts.url)
            assert refused.status_code == 503, refused.text
            assert "max_sessions_per_client" in refused.json()["error"]["message"]
        # Both idle again once the server has seen the streams close (it learns of it a moment after the
        # client does): then the longest idle one makes room.
        served = _open_when_served(http, ts.url)
        assert served.status_code == 200, served.text
        assert [_alive(http, ts.url, first), _alive(http, ts.url, second)].count(True) == 1
