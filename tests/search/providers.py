"""Loopback stand-ins for the Serper, SearXNG and Brave APIs, speaking their real request/response formats.

Each app answers from a tiny corpus (a document matches when it shares a word
with the query), checks credentials the way the provider does, records every
request, and can be scripted to fail: a queue of canned failures (status,
headers, body) is served before normal answers, ``delay_s`` makes it slow, and
``garbage`` makes it answer non-JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SERPER_KEY = "serper-test-key-7f3a9c"
BRAVE_KEY = "brave-test-key-51be02"

DOCS = [
    {
        "title": "Eiffel Tower - Wikipedia",
        "url": "https://en.wikipedia.org/wiki/Eiffel_Tower",
        "text": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
        "image": "https://upload.wikimedia.org/eiffel.jpg",
        "date": "Mar 31, 1889",
    },
    {
        "title": "Eiffel Tower tickets and opening hours",
        "url": "https://www.toureiffel.paris/en",
        "text": "Book tickets for the Eiffel Tower summit, lifts and stairs.",
        "image": "https://www.toureiffel.paris/summit.png",
    },
    {
        "title": "Tokyo Tower 東京タワー",
        "url": "https://example.jp/tokyo-tower",
        "text": "東京タワー is a communications tower in Minato, Tokyo. Café on the deck.",
        "image": "https://example.jp/tokyo.jpg",
    },
    {
        "title": "Zürich old town",
        "url": "https://example.ch/zurich",
        "text": "Zürich has a famous old town and many a café.",
        "image": "https://example.ch/zurich.jpg",
    },
]
for _index in range(4, 16):  # enough results to exercise k limits
    DOCS.append(
        {
            "title": f"Eiffel Tower photo gallery {_index}",
            "url": f"https://photos.example/eiffel/{_index}",
            "text": f"Eiffel Tower picture number {_index} taken from the Trocadéro.",
            "image": f"https://photos.example/eiffel/{_index}.jpg",
        }
    )

_WORD = re.compile(r"\w+")


def matching(query: str) -> list[dict[str, Any]]:
    words = {word.casefold() for word in _WORD.findall(query)}
    return [doc for doc in DOCS if words & {w.casefold() for w in _WORD.findall(doc["title"] + " " + doc["text"])}]


@dataclass
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class ProviderState:
    failures: list[Failure] = field(default_factory=list)
    always: Failure | None = None
    delay_s: float = 0.0
    garbage: bool = False
    wrong_shape: bool = False
    json_enabled: bool = True  # SearXNG only
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.failures.clear()
        self.always = None
        self.delay_s = 0.0
        self.garbage = False
        self.wrong_shape = False
        self.json_enabled = True
        self.requests.clear()


async def _scripted(state: ProviderState, request: Request) -> Response | None:
    body = await request.body()
    state.requests.append(
        {
            "method": request.method,
            "path": request.url.path,
            "headers": dict(request.headers),
            "params": dict(request.query_params),
            "body": body.decode("utf-8", "replace"),
        }
    )
    if state.delay_s:
        # Slow, but gone with the client: a late answer must not consume a later test's script.
        # (The body has been read, so the next ASGI message is the client's disconnect.)
        with anyio.move_on_after(state.delay_s):
            while (await request.receive())["type"] != "http.disconnect":
                pass
            return Response(status_code=499)
    failure = state.failures.pop(0) if state.failures else state.always
    if failure is not None:
        return Response(
            failure.body, status_code=failure.status, headers=failure.headers, media_type="application/json"
        )
    if state.garbage:
        return PlainTextResponse("<html><body>502 Bad Gateway from a proxy</body></html>", status_code=200)
    return None


# ---------------------------------------------------------------- Serper


def serper_app(state: ProviderState) -> Starlette:
    async def endpoint(request: Request) -> Response:
        scripted = await _scripted(state, request)
        if scripted is not None:
            return scripted
        key = request.headers.get("x-api-key")
        if key != SERPER_KEY:
            # Real providers sometimes echo what they received; the backend must not pass it on.
            return JSONResponse({"message": f"Unauthorized. Key {key} is invalid.", "statusCode": 403}, status_code=403)
        payload = await request.json()
        query, num = payload["q"], int(payload.get("num", 10))
        kind = "images" if request.url.path == "/images" else "search"
        params = {"q": query, "type": kind, "num": num, "engine": "google"}
        if state.wrong_shape:
            return JSONResponse({"searchParameters": params, "organic": "none", "images": {"x": 1}})
        docs = matching(query)[:num]
        if kind == "search":
            organic = []
            for position, doc in enumerate(docs, start=1):
                item = {"title": doc["title"], "link": doc["url"], "snippet": doc["text"], "position": position}
                if "date" in doc:
                    item["date"] = doc["date"]
                organic.append(item)
            return JSONResponse({"searchParameters": params, "organic": organic, "relatedSearches": [], "credits": 1})
        images = [
            {
                "title": doc["title"],
                "imageUrl": doc["image"],
                "imageWidth": 1024,
                "imageHeight": 768,
                "thumbnailUrl": doc["image"] + "?thumb",
                "thumbnailWidth": 200,
                "thumbnailHeight": 150,
                "source": "example",
                "domain": "example.org",
                "link": doc["url"],
                "googleUrl": "https://www.google.com/imgres?imgurl=x",
                "position": position,
            }
            for position, doc in enumerate(docs, start=1)
        ]
        return JSONResponse({"searchParameters": params, "images": images, "credits": 1})

    return Starlette(
        routes=[Route("/search", endpoint, methods=["POST"]), Route("/images", endpoint, methods=["POST"])]
    )


# ---------------------------------------------------------------- SearXNG


def searxng_app(state: ProviderState) -> Starlette:
    async def search(request: Request) -> Response:
        scripted = await _scripted(state, request)
        if scripted is not None:
            return scripted
        params = request.query_params
        if params.get("format") != "json" or not state.json_enabled:
            return PlainTextResponse("Forbidden", status_code=403)
        query = params.get("q", "")
        category = params.get("categories", "general")
        if state.wrong_shape:
            return JSONResponse({"query": query, "results": {"oops": True}})
        results: list[dict[str, Any]] = []
        for position, doc in enumerate(matching(query), start=1):
            if category == "images":
                image = doc["image"]
                results.append(
                    {
                        "template": "images.html",
                        "url": doc["url"],
                        "title": doc["title"],
                        "content": "",
                        # one engine answers with a protocol-relative URL, as some do
                        "img_src": image.replace("https:", "") if position == 2 else image,
                        "thumbnail_src": image + "?thumb",
                        "resolution": "1200 x 800",
                        "img_format": "JPEG",
                        "engine": "bing images",
                        "engines": ["bing images"],
                        "positions": [position],
                        "score": 1.0 / position,
                        "category": "images",
                    }
                )
            else:
                results.append(
                    {
                        "url": doc["url"],
                        "title": doc["title"],
                        "content": doc["text"],
                        "publishedDate": "1889-03-31T00:00:00" if "date" in doc else None,
                        "engine": "duckduckgo",
                        "engines": ["duckduckgo", "brave"],
                        "positions": [position],
                        "score": 2.0 / position,
                        "category": "general",
                    }
                )
        return JSONResponse(
            {
                "query": query,
                "number_of_results": 0,
                "results": results,
                "answers": [],
                "corrections": [],
                "infoboxes": [],
                "suggestions": [],
                "unresponsive_engines": [],
            }
        )

    return Starlette(routes=[Route("/search", search, methods=["GET"])])


# ---------------------------------------------------------------- Brave


def brave_app(state: ProviderState) -> Starlette:
    async def endpoint(request: Request) -> Response:
        scripted = await _scripted(state, request)
        if scripted is not None:
            return scripted
        token = request.headers.get("x-subscription-token")
        if token != BRAVE_KEY:
            return JSONResponse(
                {
                    "type": "ErrorResponse",
                    "error": {
                        "id": "e1",
                        "status": 422,
                        "code": "SUBSCRIPTION_TOKEN_INVALID",
                        "detail": f"The provided subscription token {token} is invalid.",
                    },
                    "time": 1,
                },
                status_code=422,
            )
        query = request.query_params.get("q", "")
        count = int(request.query_params.get("count", "20"))
        if state.wrong_shape:
            return JSONResponse({"type": "search", "web": {"results": 7}, "results": "x"})
        docs = matching(query)[:count]
        if request.url.path.endswith("/images/search"):
            results = [
                {
                    "type": "image_result",
                    "title": doc["title"],
                    "url": doc["url"],
                    "source": "example.org",
                    "page_fetched": "2025-01-01T00:00:00Z",
                    "thumbnail": {"src": "https://imgs.search.brave.com/thumb" + str(i)},
                    "properties": {
                        "url": doc["image"],
                        "placeholder": "https://imgs.search.brave.com/ph",
                        "width": 800,
                        "height": 600,
                    },
                    "meta_url": {"scheme": "https", "netloc": "example.org"},
                    "confidence": "high",
                }
                for i, doc in enumerate(docs)
            ]
            return JSONResponse({"type": "images", "query": {"original": query}, "results": results})
        body: dict[str, Any] = {"type": "search", "query": {"original": query, "more_results_available": False}}
        if docs:
            body["web"] = {
                "type": "search",
                "family_friendly": True,
                "results": [
                    {
                        "type": "search_result",
                        "title": doc["title"],
                        "url": doc["url"],
                        "description": doc["text"].replace("Tower", "<strong>Tower</strong>").replace("&", "&amp;"),
                        "age": "March 31, 1889" if "date" in doc else None,
                        "language": "en",
                        "family_friendly": True,
                        "meta_url": {"scheme": "https", "netloc": "example.org"},
                    }
                    for doc in docs
                ],
            }
        return JSONResponse(body)

    prefix = "/res/v1"
    return Starlette(
        routes=[
            Route(f"{prefix}/web/search", endpoint, methods=["GET"]),
            Route(f"{prefix}/images/search", endpoint, methods=["GET"]),
        ]
    )
