"""Raw JSON-RPC over streamable HTTP, for tests that send what no SDK client would."""

from __future__ import annotations

import json
from typing import Any

import httpx

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PROTOCOL_VERSION = "2025-06-18"


def initialize_body(request_id: int | str = 1, protocol_version: str = PROTOCOL_VERSION) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": protocol_version,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }


def answer_of(response: httpx.Response) -> Any:
    """The JSON-RPC message of an answer sent as plain JSON or as one SSE event (``None`` if none came)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        # SSE lines end in CR, LF or CRLF only (str.splitlines would also split at U+0085 inside the JSON).
        for line in response.text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            if line.startswith("data:") and line[5:].strip():
                return json.loads(line[5:])
        return None
    return response.json() if response.content else None


def open_session(
    http: httpx.Client, url: str, *, headers: dict[str, str] | None = None, protocol_version: str = PROTOCOL_VERSION
) -> dict[str, str]:
    """Initialize a session; returns the headers every later request of it carries."""
    base = {**MCP_HEADERS, **(headers or {})}
    response = http.post(url, json=initialize_body(protocol_version=protocol_version), headers=base)
    assert response.status_code == 200, (response.status_code, response.text)
    session = {**base, "mcp-protocol-version": protocol_version}
    if "mcp-session-id" in response.headers:
        session["mcp-session-id"] = response.headers["mcp-session-id"]
    initialized = http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
    assert initialized.status_code == 202, initialized.text
    return session


def call(http: httpx.Client, url: str, session: dict[str, str], method: str, params: Any, request_id: int = 7) -> Any:
    """One request's answer (the JSON-RPC message)."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return answer_of(http.post(url, json=body, headers=session))
