"""A scripted OpenAI-compatible judge for tests (``POST /v1/chat/completions``).

Rules match a substring of the request's text (all text parts of all messages);
each rule replays its replies in order and repeats the last one. A reply is
the assistant's text, or an ``int`` HTTP status to fail with. Every request
is recorded for assertions.

    judge = ScriptedJudge(default='{"score": 1}')
    judge.when("Eiffel", "not json", '{"score": 0.5}')
    with serve_judge(judge) as base_url:   # base_url ends with /v1
        ...
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.loopback import serve_app

Reply = str | int


@dataclass
class _Rule:
    needle: str
    replies: list[Reply]
    used: int = 0

    def next(self) -> Reply:
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


def request_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def image_urls(body: dict[str, Any]) -> list[str]:
    urls: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            urls.extend(p["image_url"]["url"] for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return urls


@dataclass
class ScriptedJudge:
    default: Reply | None = None
    api_key: str | None = None
    delay_s: float = 0.0
    rules: list[_Rule] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def when(self, needle: str, *replies: Reply) -> ScriptedJudge:
        self.rules.append(_Rule(needle, list(replies)))
        return self

    def _pick(self, text: str) -> Reply | None:
        with self._lock:
            for rule in self.rules:
                if rule.needle in text:
                    return rule.next()
        return self.default

    async def _chat(self, request: Request) -> JSONResponse:
        import anyio

        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": {"message": "bad json"}}, status_code=400)
        with self._lock:
            self.requests.append(body)
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        reply = self._pick(request_text(body))
        if reply is None:
            return JSONResponse({"error": {"message": "no scripted reply"}}, status_code=400)
        if isinstance(reply, int):
            return JSONResponse({"error": {"message": f"scripted {reply}"}}, status_code=reply)
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model", ""),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            }
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])


@contextlib.contextmanager
def serve_judge(judge: ScriptedJudge) -> Iterator[str]:
    """Serve ``judge`` on loopback; yields the API root (``http://127.0.0.1:PORT/v1``)."""
    with serve_app(judge.app()) as base:
        yield base + "/v1"


def kscore_reply(f: float, vc: float, ta: float, a: float, na: bool = False, rationale: str = "scripted") -> str:
    return json.dumps(
        {
            "faithfulness": f,
            "visual_correctness": vc,
            "text_accuracy": ta,
            "text_accuracy_na": na,
            "aesthetics": a,
            "rationale": rationale,
        }
    )
