"""Client of an OpenAI-compatible images API.

Text-only requests go to ``POST {base}/images/generations`` (JSON), requests
with references to ``POST {base}/images/edits`` (multipart, one ``image[]``
part per reference). Images come back as ``b64_json`` (or a ``url``, which is
then downloaded). Providers reject unknown fields, so the Qwen-Image extras
(seed, steps, negative prompt, true CFG) are sent only with
``extra_params=True`` (our render server understands them).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
from PIL import Image

from gen_searcher_core.imaging import png_bytes
from render_tools.base import RendererUnavailable, RenderRequest, RenderResult, error_for_http_status
from render_tools.http_client import MAX_RESPONSE_IMAGE_BYTES
from render_tools.imaging import decode_base64, decode_image


class OpenAIImagesRenderer:
    """:class:`~render_tools.base.Renderer` over ``/v1/images/generations`` and ``/v1/images/edits``."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        extra_params: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.extra_params = extra_params
        # The key goes only to the API itself, never to the (often third-party) hosts of result URLs.
        self._api_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0), transport=transport)

    def _fields(self, request: RenderRequest) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "prompt": request.prompt,
            "n": request.num_images,
            "size": f"{request.width}x{request.height}",
        }
        if self.model:
            fields["model"] = self.model
        if self.extra_params:
            fields.update(
                seed=request.seed,
                num_inference_steps=request.steps,
                negative_prompt=request.negative_prompt,
                true_cfg_scale=request.true_cfg_scale,
                response_format="b64_json",
            )
            if request.guidance_scale is not None:
                fields["guidance_scale"] = request.guidance_scale
        return fields

    async def render(self, request: RenderRequest) -> RenderResult:
        fields = self._fields(request)
        started = time.perf_counter()
        try:
            if request.is_edit:
                files = await anyio.to_thread.run_sync(_png_parts, request)
                data = {key: str(value) for key, value in fields.items()}
                response = await self._client.post(
                    f"{self.base_url}/images/edits", data=data, files=files, headers=self._api_headers
                )
            else:
                response = await self._client.post(
                    f"{self.base_url}/images/generations", json=fields, headers=self._api_headers
                )
        except httpx.TimeoutException:
            raise RendererUnavailable(f"images API at {self.base_url} timed out") from None
        except httpx.HTTPError as exc:
            raise RendererUnavailable(f"cannot reach the images API at {self.base_url}: {exc}") from None
        body = _json_or_none(response)
        if response.status_code >= 400:
            message = _error_message(body, response.status_code)
            raise error_for_http_status(response.status_code, f"images API: {message}")
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise RendererUnavailable("images API answered without data")
        images = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
                raw = decode_base64(item["b64_json"], what="rendered image", max_bytes=MAX_RESPONSE_IMAGE_BYTES)
            elif isinstance(item, dict) and isinstance(item.get("url"), str):
                raw = await self._download(item["url"])
            else:
                raise RendererUnavailable("images API answered an item without b64_json or url")
            images.append(await anyio.to_thread.run_sync(_decode_result, raw))
        return RenderResult(
            images=images,
            seed=int(body.get("seed", request.fixed_seed)) if isinstance(body, dict) else request.fixed_seed,
            elapsed_s=time.perf_counter() - started,
            model=self.model or self.base_url,
        )

    async def _download(self, url: str) -> bytes:
        try:
            async with self._client.stream("GET", url, follow_redirects=True) as response:
                response.raise_for_status()
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_IMAGE_BYTES:
                        raise RendererUnavailable("images API result is too large")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise RendererUnavailable(f"cannot download the rendered image: {exc}") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def _png_parts(request: RenderRequest) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("image[]", (f"reference_{index + 1}.png", png_bytes(image), "image/png"))
        for index, image in enumerate(request.reference_images)
    ]


def _decode_result(raw: bytes) -> Image.Image:
    try:
        return decode_image(raw, what="rendered image", max_bytes=MAX_RESPONSE_IMAGE_BYTES)
    except Exception as exc:  # noqa: BLE001  the provider's fault, not the caller's
        raise RendererUnavailable(f"images API sent a bad image: {exc}") from None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(body: Any, status: int) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return f"HTTP {status}"
