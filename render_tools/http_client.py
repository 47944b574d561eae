"""Client of a render server's ``POST /generate`` (ours, or the published Gen-Searcher server).

The request carries the published fields (``prompt``, ``image_urls`` as PNG
data URLs, ``seed``, ``true_cfg_scale``, ``negative_prompt``,
``num_inference_steps``, ``guidance_scale``, ``num_images_per_prompt``) plus
``width``/``height``; the answer is ``{"success": true, "image": <base64 PNG>}``
or ``{"success": false, "message": ...}``.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
from PIL import Image

from render_tools.base import (
    InvalidRenderRequest,
    RendererUnavailable,
    RenderRequest,
    RenderResult,
    error_for_http_status,
)
from render_tools.imaging import decode_base64, decode_image, png_data_url

MAX_RESPONSE_IMAGE_BYTES = 64 * 1024 * 1024


def generate_payload(request: RenderRequest) -> dict[str, Any]:
    """The ``/generate`` JSON body for a validated request."""
    payload: dict[str, Any] = {
        "prompt": request.prompt,
        "image_urls": [png_data_url(img) for img in request.reference_images],
        "seed": request.seed,
        "true_cfg_scale": request.true_cfg_scale,
        "negative_prompt": request.negative_prompt,
        "num_inference_steps": request.steps,
        "num_images_per_prompt": request.num_images,
        "width": request.width,
        "height": request.height,
    }
    if request.guidance_scale is not None:
        payload["guidance_scale"] = request.guidance_scale
    return payload


class HttpRenderer:
    """:class:`~render_tools.base.Renderer` that calls a render server over HTTP."""

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/generate") else base + "/generate"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=10.0), headers=headers, transport=transport
        )

    async def render(self, request: RenderRequest) -> RenderResult:
        payload = await anyio.to_thread.run_sync(generate_payload, request)
        started = time.perf_counter()
        try:
            response = await self._client.post(self.endpoint, json=payload)
        except httpx.TimeoutException:
            raise RendererUnavailable(f"render server at {self.endpoint} timed out") from None
        except httpx.HTTPError as exc:
            raise RendererUnavailable(f"cannot reach the render server at {self.endpoint}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise error_for_http_status(
                response.status_code, f"render server answered HTTP {response.status_code} without a JSON body"
            )
        if not body.get("success") or response.status_code >= 400:
            message = str(body.get("message") or f"HTTP {response.status_code}")
            raise error_for_http_status(response.status_code, f"render server: {message}")
        encoded = body.get("images") or [body.get("image")]
        if not all(isinstance(item, str) for item in encoded):
            raise RendererUnavailable("render server answered success without an image")
        images = await anyio.to_thread.run_sync(_decode_all, encoded)
        return RenderResult(
            images=images,
            seed=int(body.get("seed", request.fixed_seed)),
            elapsed_s=float(body.get("elapsed_s", time.perf_counter() - started)),
            model=str(body.get("model", self.endpoint)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def _decode_all(encoded: list[str]) -> list[Image.Image]:
    try:
        return [
            decode_image(
                decode_base64(item, what="rendered image", max_bytes=MAX_RESPONSE_IMAGE_BYTES),
                what="rendered image",
                max_bytes=MAX_RESPONSE_IMAGE_BYTES,
            )
            for item in encoded
        ]
    except InvalidRenderRequest as exc:  # the server's fault, not the caller's
        raise RendererUnavailable(f"render server sent a bad image: {exc}") from None
