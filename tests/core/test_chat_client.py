"""The shared chat-completions client against a loopback OpenAI-compatible server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gen_searcher_core.chat_client import ChatClient, ChatError, RetryPolicy, parse_reply
from gen_searcher_core.http_retry import parse_retry_after, rate_limiter
from tests.support.loopback import free_port, serve_app

pytestmark = pytest.mark.anyio
KEY = "sk-chat-secret-42"


class Script:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []

    async def handle(self, request: Request) -> Response:
        self.seen.append({"auth": request.headers.get("authorization"), "at": time.monotonic()})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Response):
            return answer
        return JSONResponse(answer)


def completion(text: str | None, **message: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"content": text, **message}, "finish_reason": "stop"}]}


@pytest.fixture
def served() -> Iterator[Any]:
    def start(script: Script) -> Any:
        app = Starlette(routes=[Route("/v1/chat/completions", script.handle, methods=["POST"])])
        return serve_app(app)

    yield start


async def test_retry_after_is_honoured_then_the_reply_returns(served: Any) -> None:
    script = Script(Response("busy", status_code=503, headers={"Retry-After": "0"}), completion("hello"))
    with served(script) as base:
        client = ChatClient(base + "/v1", api_key=SecretStr(KEY), retry=RetryPolicy(max_attempts=2))
        reply = await client.complete({"model": "m", "messages": []})
        await client.aclose()
    assert reply.text == "hello" and not reply.truncated
    assert [seen["auth"] for seen in script.seen] == [f"Bearer {KEY}"] * 2


async def test_failures_say_what_went_wrong_without_the_key(served: Any) -> None:
    refused = Response('{"error": {"message": "bad model"}}', status_code=400, media_type="application/json")
    with served(Script(refused)) as base:
        client = ChatClient(base + "/v1", api_key=KEY, retry=RetryPolicy(max_attempts=3))
        with pytest.raises(ChatError) as raised:
            await client.complete({"model": "m", "messages": []})
        await client.aclose()
    error = raised.value
    assert (error.kind, error.status, error.transient, error.error_text) == ("status", 400, False, "bad model")
    down = ChatClient(f"http://127.0.0.1:{free_port()}/v1", api_key=KEY, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ChatError) as raised:
        await down.complete({"model": "m", "messages": []})
    await down.aclose()
    assert raised.value.kind == "unreachable" and raised.value.cause == "ConnectError" and raised.value.transient
    assert KEY not in str(raised.value) and KEY not in repr(raised.value.__dict__)


def test_replies_are_read_the_same_way_everywhere() -> None:
    reply = parse_reply(completion("answer", reasoning_content="thinking"))
    assert reply.text == "<think>thinking</think>\nanswer"
    assert parse_reply(completion("answer", reasoning_content="thinking"), with_reasoning=False).text == "answer"
    assert parse_reply(completion([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])).text == "ab"
    assert parse_reply(completion(None)).has_text is False
    with pytest.raises(ChatError, match="malformed"):
        parse_reply({"choices": []})


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=lambda: 40.0) == 60.0


async def test_rate_limiter_spaces_starts_with_burst_one() -> None:
    limiter = rate_limiter(50.0, burst=1)
    started = []
    for _ in range(4):
        async with limiter:
            started.append(time.monotonic())
    assert started[-1] - started[0] >= 3 / 50 * 0.8  # three gaps of 1/50 s (generous lower bound)
    async with rate_limiter(None):  # no limit
        pass
