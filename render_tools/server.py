"""The render server: Qwen-Image on every GPU behind one HTTP endpoint.

Endpoints
    ``POST /generate``                 the published Gen-Searcher server's API
    ``POST /v1/images/generations``    OpenAI images API, text-only
    ``POST /v1/images/edits``          OpenAI images API, with references (multipart or JSON)
    ``GET  /health``                   workers, queue depth, failures

Errors are JSON with a one-line message (never a traceback, secrets masked):
400 for a bad request, 401 without a valid key (when keys are set), 503 when
the queue is full or every worker is out of service, 500 when a render failed
on a device. Requests whose Host or Origin is not this server's are refused
(421 / 403; the tool server's policy), so a web page cannot queue renders. A
request whose client disconnects leaves the queue at once; one already on a
device is interrupted at its next denoising step when nobody else waits for it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gen_searcher_core.errors import first_leaf
from gen_searcher_core.host_policy import HostGuard, HostPolicy
from gen_searcher_core.imaging import png_bytes
from gen_searcher_core.redact import Redactor
from render_tools.base import (
    MAX_REFERENCES,
    InvalidRenderRequest,
    RendererBusy,
    RenderError,
    RenderRequest,
    RenderResult,
)
from render_tools.imaging import MAX_IMAGE_BYTES, decode_image
from render_tools.references import MAX_REFERENCE_INPUTS, ReferenceLoader, check_reference_count
from render_tools.workers import AllWorkersDown, RenderTimedOut, WorkerPool

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 8 * 1024 * 1024 + MAX_REFERENCE_INPUTS * MAX_IMAGE_BYTES * 4 // 3
OPEN_PATHS = frozenset({"/health"})


class ClientGone(Exception):
    """The client disconnected before its render was done."""


async def _until_disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body must have been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def while_connected(request: Request, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work`` and cancel it (dropping a queued render) as soon as the client disconnects."""
    outcome: list[Any] = []
    try:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                await _until_disconnected(request)
                tg.cancel_scope.cancel()

            tg.start_soon(watch)
            outcome.append(await work())
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the work's own error, unwrapped
        raise first_leaf(group) from None
    if not outcome:
        raise ClientGone
    return outcome[0]


class _PayloadTooLarge(InvalidRenderRequest):
    pass


def _status_for(error: RenderError) -> int:
    if isinstance(error, _PayloadTooLarge):
        return 413
    if isinstance(error, InvalidRenderRequest):
        return 400
    if isinstance(error, (RendererBusy, AllWorkersDown)):
        return 503
    if isinstance(error, RenderTimedOut):
        return 504
    return 500


async def _read_json(request: Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _PayloadTooLarge(f"request body is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"null", parse_constant=_refuse_constant)
    except RecursionError:  # the decoder's own depth guard: a request is an object of short lists
        raise InvalidRenderRequest("the request body is nested too deeply to be a render request") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRenderRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRenderRequest("the request body must be a JSON object")
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _number(body: dict[str, Any], name: str, kind: type, default: Any = None, *aliases: str) -> Any:
    for key in (name, *aliases):
        if key in body and body[key] is not None:
            value = body[key]
            break
    else:
        return default
    if isinstance(value, bool):
        raise InvalidRenderRequest(f"{name} must be a number")
    try:
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        number = float(value)
        if not math.isfinite(number):  # 1e999 reads as infinity
            raise ValueError
        return number
    except (TypeError, ValueError, OverflowError):
        raise InvalidRenderRequest(f"{name} must be {'an integer' if kind is int else 'a number'}") from None


def _text(body: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidRenderRequest(f"{name} must be a string")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (\ud800) is valid JSON but no text
            raise InvalidRenderRequest(f"{name} must be valid Unicode text") from None
    return value


def _size(body: dict[str, Any]) -> tuple[int, int]:
    size = body.get("size")
    if size in (None, "auto"):
        return _number(body, "width", int, 1024), _number(body, "height", int, 1024)
    if isinstance(size, str) and "x" in size.lower():
        w, _, h = size.lower().partition("x")
        if w.strip().isdigit() and h.strip().isdigit():
            return int(w), int(h)
    raise InvalidRenderRequest("size must look like '1024x1024' (width x height) or 'auto'")


def _render_request(body: dict[str, Any], images: list[Image.Image], *, openai: bool) -> RenderRequest:
    width, height = _size(body)
    steps = _number(body, "num_inference_steps", int, None, "steps")
    cfg = _number(body, "true_cfg_scale", float, 4.0)
    return RenderRequest(
        prompt=_text(body, "prompt", "") or "",
        reference_images=tuple(images),
        width=width,
        height=height,
        seed=_number(body, "seed", int, None),
        steps=steps,
        true_cfg_scale=cfg,
        negative_prompt=_text(body, "negative_prompt", " ") or " ",
        guidance_scale=_number(body, "guidance_scale", float, None),
        num_images=(
            _number(body, "n", int, 1, "num_images_per_prompt")
            if openai
            else _number(body, "num_images_per_prompt", int, 1)
        ),
    )


class RenderApp:
    """Request handling over a :class:`WorkerPool`; ``starlette()`` builds the ASGI app."""

    def __init__(
        self,
        pool: WorkerPool,
        *,
        fetcher: Any | None = None,
        api_keys: Sequence[str] = (),
        max_reference_bytes: int = MAX_IMAGE_BYTES,
        model_name: str = "qwen-image",
        host_policy: HostPolicy | None = None,
        images: Any | None = None,
    ) -> None:
        self.pool = pool
        self.fetcher = fetcher
        # The shared image store (images.url): image://{id} references, and every result stored with an id.
        self.images = images
        self.references = ReferenceLoader(fetcher, max_bytes=max_reference_bytes, images=images)
        self.api_keys = tuple(api_keys)
        self.model_name = model_name
        # Loopback names only unless the caller names more (the CLI passes its bind host and allowed hosts).
        self.host_policy = host_policy or HostPolicy("127.0.0.1", [])
        self.redact = Redactor(self.api_keys)

    # -- plumbing -------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        if not self.api_keys:
            return True
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        return any(secrets.compare_digest(token.encode(), key.encode()) for key in self.api_keys)

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]], error: Callable[[int, str], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not self._authorized(request):
                return error(401, "missing or invalid API key")
            try:
                return await handler(request)
            except ClientGone:
                logger.info("render server: client left before %s finished; dropped", request.url.path)
                return Response(status_code=499)  # nobody reads it
            except RenderError as exc:
                return error(_status_for(exc), self.redact(str(exc)))
            except Exception:
                logger.exception("render server: unexpected error on %s", request.url.path)
                return error(500, "internal error")

        return endpoint

    @staticmethod
    def _generate_error(status: int, message: str) -> Response:
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse({"success": False, "message": message}, status_code=status, headers=headers)

    @staticmethod
    def _openai_error(status: int, message: str) -> Response:
        kind = {400: "invalid_request_error", 401: "authentication_error", 413: "invalid_request_error"}.get(
            status, "server_error"
        )
        headers = {"Retry-After": "5"} if status == 503 else None
        return JSONResponse(
            {"error": {"message": message, "type": kind, "param": None, "code": None}},
            status_code=status,
            headers=headers,
        )

    async def _encode(self, result: RenderResult) -> list[str]:
        pngs = await anyio.to_thread.run_sync(lambda: [png_bytes(img) for img in result.images])
        result.extra["pngs"] = pngs  # kept for _store: encoded once
        return [base64.b64encode(png).decode("ascii") for png in pngs]

    async def _store(self, result: RenderResult, body: dict[str, Any]) -> dict[str, Any]:
        """``{"ids": [...]}`` of the results kept in the shared store, or ``{"store_error": why}``."""
        if self.images is None:
            return {}
        from safe_io.image_store import ImageStoreUnavailable

        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            prompt = ""
        pngs = result.extra.get("pngs")
        ids = []
        try:
            for index, png in enumerate(pngs if isinstance(pngs, list) else []):
                meta = {"source": "render", "prompt": prompt[:1000], "seed": result.seed + index, "model": result.model}
                ids.append((await self.images.put(png, "image/png", meta)).id)
        except ImageStoreUnavailable as exc:  # the render is done: answer it, and say why it has no id
            return {"store_error": str(exc)}
        return {"ids": ids}

    # -- endpoints ------------------------------------------------------------
    async def generate(self, request: Request) -> Response:
        body = await _read_json(request)
        urls = body.get("image_urls") or []
        if not isinstance(urls, list):
            raise InvalidRenderRequest("image_urls must be a list of URLs")
        check_reference_count(len(urls))
        # Check the cheap fields before fetching anything.
        _render_request(body, [], openai=False)
        images = await self.references.load(urls)
        render_request = _render_request(body, images, openai=False)
        result = await self._submit(request, render_request)
        encoded = await self._encode(result)
        answer: dict[str, Any] = {
            "success": True,
            "image": encoded[0],
            "seed": result.seed,
            "elapsed_s": round(result.elapsed_s, 3),
            "model": result.model,
        }
        if len(encoded) > 1:
            answer["images"] = encoded
        stored = await self._store(result, body)
        if "ids" in stored:
            answer["id"] = stored["ids"][0]
            if len(stored["ids"]) > 1:
                answer["ids"] = stored["ids"]
        answer.update({k: v for k, v in stored.items() if k == "store_error"})
        return JSONResponse(answer)

    async def _submit(self, request: Request, render_request: RenderRequest) -> RenderResult:
        result: RenderResult = await while_connected(request, lambda: self.pool.submit(render_request))
        return result

    async def _openai_answer(self, request: Request, body: dict[str, Any], render_request: RenderRequest) -> Response:
        if body.get("response_format") not in (None, "b64_json"):
            raise InvalidRenderRequest("only response_format 'b64_json' is supported")
        result = await self._submit(request, render_request)
        encoded = await self._encode(result)
        data: list[dict[str, Any]] = [{"b64_json": item} for item in encoded]
        stored = await self._store(result, body)
        for item, image_id in zip(data, stored.get("ids", []), strict=False):
            item["id"] = image_id
        answer: dict[str, Any] = {"created": int(time.time()), "data": data, "seed": result.seed, "model": result.model}
        answer.update({k: v for k, v in stored.items() if k == "store_error"})
        return JSONResponse(answer)

    async def images_generations(self, request: Request) -> Response:
        body = await _read_json(request)
        return await self._openai_answer(request, body, _render_request(body, [], openai=True))

    async def images_edits(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = await _read_json(request)
            urls = body.get("images") or body.get("image_urls") or []
            if not isinstance(urls, list):
                raise InvalidRenderRequest("images must be a list")
            urls = [u.get("image_url") if isinstance(u, dict) else u for u in urls]
            check_reference_count(len(urls))
            _render_request(body, [], openai=True)
            images = await self.references.load(urls)
        else:
            body, images = await self._read_multipart(request)
        if not images:
            raise InvalidRenderRequest("an edit needs at least one image")
        return await self._openai_answer(request, body, _render_request(body, images, openai=True))

    async def _read_multipart(self, request: Request) -> tuple[dict[str, Any], list[Image.Image]]:
        declared = request.headers.get("content-length")
        limit = MAX_REFERENCE_INPUTS * self.references.max_bytes + 1024 * 1024
        if declared and declared.isdigit() and int(declared) > limit:
            raise _PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        try:
            form = await request.form(max_files=MAX_REFERENCE_INPUTS + 1, max_fields=64, max_part_size=1024 * 1024)
        except Exception:  # noqa: BLE001  starlette raises several types for malformed forms
            raise InvalidRenderRequest("the request body is not a valid multipart form") from None
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(form.close)
            files = [v for key in ("image[]", "image") for v in form.getlist(key) if isinstance(v, UploadFile)]
            check_reference_count(len(files))
            body = {key: value for key, value in form.items() if isinstance(value, str)}
            images = []
            for index, upload in enumerate(files[:MAX_REFERENCES]):
                data = await upload.read(self.references.max_bytes + 1)
                what = f"reference image {index + 1}"
                decode = functools.partial(decode_image, data, what=what, max_bytes=self.references.max_bytes)
                images.append(await anyio.to_thread.run_sync(decode))
        return body, images

    async def health(self, request: Request) -> Response:
        report = self.pool.health()
        report["model"] = self.model_name
        for worker in report["workers"]:
            if worker["last_error"]:
                worker["last_error"] = self.redact(worker["last_error"])
        return JSONResponse(report, status_code=200 if report["status"] != "down" else 503)

    def starlette(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.pool.run)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
                    if self.fetcher is not None:
                        with anyio.CancelScope(shield=True):
                            await self.fetcher.aclose()
                    if self.images is not None:
                        with anyio.CancelScope(shield=True):
                            await self.images.aclose()

        gen, oai = self._generate_error, self._openai_error
        routes = [
            Route("/generate", self._guard(self.generate, gen), methods=["POST"]),
            Route("/v1/images/generations", self._guard(self.images_generations, oai), methods=["POST"]),
            Route("/v1/images/edits", self._guard(self.images_edits, oai), methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
        ]
        app = Starlette(routes=routes, lifespan=lifespan)
        app.add_middleware(HostGuard, policy=self.host_policy, open_paths=OPEN_PATHS)
        return app


def create_app(pool: WorkerPool, **kwargs: Any) -> Starlette:
    """The ASGI app over ``pool`` (see :class:`RenderApp` for the options)."""
    return RenderApp(pool, **kwargs).starlette()
