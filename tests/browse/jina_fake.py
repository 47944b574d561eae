"""A loopback stand-in for the hosted Jina Reader: ``POST /`` with ``{"url": ...}``, JSON answers.

Like the real service it reads the page itself (from the test web, without
following redirects out of it) and answers ``{"code": 200, "status": 20000,
"data": {"title", "url", "content"}}`` with markdown content, or an error object
(``{"code", "name", "message", "readableMessage"}``) with the same HTTP status.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = "jina_test_key_0123456789abcdef"


@dataclass
class FakeJina:
    key: str = KEY
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None

    def app(self) -> Starlette:
        async def read(request: Request) -> Response:
            self.requests.append(
                {"authorization": request.headers.get("authorization"), "accept": request.headers.get("accept")}
            )
            if request.headers.get("authorization") != f"Bearer {self.key}":
                return error(401, "AuthenticationFailedError", "Invalid API key")
            if self.fail_with:
                return error(self.fail_with, "RateLimitTriggeredError", "Per-IP rate limit exceeded")
            url = (await request.json())["url"]
            async with httpx.AsyncClient(follow_redirects=False) as client:
                page = await client.get(url)
            if page.status_code >= 300:
                return error(422, "AssertionFailureError", f"Failed to load {url}: HTTP {page.status_code}")
            title, text = to_markdown(page)
            body = {"code": 200, "status": 20000, "data": {"title": title, "url": url, "content": text}}
            return JSONResponse(body)

        return Starlette(routes=[Route("/", read, methods=["POST"])])


def error(status: int, name: str, message: str) -> JSONResponse:
    body = {"data": None, "code": status, "name": name, "status": status * 100, "message": message}
    return JSONResponse({**body, "readableMessage": f"{name}: {message}"}, status_code=status)


def to_markdown(page: httpx.Response) -> tuple[str, str]:
    media = page.headers.get("content-type", "").split(";")[0]
    if media == "application/pdf":
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(page.content))
        return "", "\n\n".join((p.extract_text() or "") for p in reader.pages)
    if media != "text/html":
        return "", page.text
    import trafilatura

    doc = trafilatura.bare_extraction(page.text, output_format="python", include_formatting=True)
    return (doc.title or "" if doc is not None else ""), (doc.text or "" if doc is not None else "")
