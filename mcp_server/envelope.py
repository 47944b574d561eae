"""JSON-RPC envelopes the SDK would leave unanswered or answer badly, answered here the same on every transport.

The SDK takes a request whose ``id`` is an object, a float, ``null`` or a
boolean for a notification (no answer over HTTP, and over stdio a line it
cannot parse is dropped, so the client waits forever), and answers params of
the wrong shape with its validator's full dump. Both transports screen each
incoming body with :func:`screen` first and send its answer instead:
``-32600 Invalid Request`` (``-32700`` for a line that is not JSON, where the
transport asks), with the request's id when it can be read and ``null``
otherwise, and a message that names the field.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types
from pydantic import ValidationError

from gen_searcher_core.limits import MAX_REQUEST_ID_CHARS

__all__ = ["error_response", "screen"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def error_response(code: int, message: str, request_id: int | str | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return False
    return not isinstance(value, str) or len(value) <= MAX_REQUEST_ID_CHARS


def _problem(message: Any) -> tuple[int | str | None, str] | None:
    """``(id to answer with, why)`` for a message that is no valid JSON-RPC message, else ``None``."""
    if not isinstance(message, dict):
        return None, "a JSON-RPC message is an object"
    has_id = "id" in message
    request_id = message.get("id")
    if has_id and not _valid_id(request_id):
        return None, f"id must be a string (at most {MAX_REQUEST_ID_CHARS} characters) or an integer"
    answer_id = request_id if has_id else None
    if message.get("jsonrpc") != "2.0":
        return answer_id, 'jsonrpc must be "2.0"'
    if "method" in message:
        if not isinstance(message["method"], str):
            return answer_id, "method must be a string"
        if "params" in message and not isinstance(message["params"], dict):
            return answer_id, "params must be an object"
        return None
    if has_id and ("result" in message or "error" in message):  # a client's answer to a server request
        return None
    return answer_id, "a request needs a method"


def screen(body: bytes | str, *, answer_parse_errors: bool) -> dict[str, Any] | None:
    """The error answer for a body that must not reach the SDK, or ``None`` to pass it on.

    Only the envelope is checked; a batch is refused as a whole when one of its
    messages is invalid (MCP has no batches since 2025-06-18). With
    ``answer_parse_errors`` a body that is not JSON is answered ``-32700``
    (stdio); otherwise it passes on to the SDK's own parse error (HTTP).
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        return error_response(PARSE_ERROR, "Parse error: the message is not JSON") if answer_parse_errors else None
    messages = parsed if isinstance(parsed, list) else [parsed]
    if isinstance(parsed, list) and not parsed:
        return error_response(INVALID_REQUEST, "Invalid Request: an empty batch")
    for message in messages:
        problem = _problem(message)
        if problem is not None:
            request_id, why = problem
            return error_response(
                INVALID_REQUEST, f"Invalid Request: {why}", request_id if len(messages) == 1 else None
            )
    if isinstance(parsed, list) and answer_parse_errors:
        return error_response(INVALID_REQUEST, "Invalid Request: batches are not supported; send one message a line")
    if answer_parse_errors:  # stdio: whatever the SDK could not read would go unanswered, so check it here
        try:
            mcp_types.jsonrpc_message_adapter.validate_json(body, by_name=False)
        except ValidationError as exc:
            fields = sorted({".".join(str(part) for part in item["loc"][1:]) or "message" for item in exc.errors()})
            request_id = parsed.get("id") if isinstance(parsed, dict) else None
            return error_response(INVALID_REQUEST, f"Invalid Request: check {', '.join(fields[:5])}", request_id)
    return None
