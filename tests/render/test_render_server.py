"""The render server over HTTP: concurrency, batching, queue limits, bad input, faults, clients."""

from __future__ import annotations

import base64
import contextlib
import io
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from render_tools.base import InvalidRenderRequest, Renderer, RendererBusy, RendererUnavailable, RenderRequest
from render_tools.diffusers_renderer import DiffusersOptions, QwenImageEngine
from render_tools.http_client import HttpRenderer
from render_tools.imaging import png_bytes, png_data_url
from render_tools.openai_images import OpenAIImagesRenderer
from render_tools.server import create_app
from render_tools.workers import PoolConfig, WorkerPool
from safe_io.fetcher import GuardedFetcher
from safe_io.netguard import AddressPolicy
from tests.support.loopback import serve_app

from .conftest import EngineControls

pytestmark = pytest.mark.slow

SMALL = {"width": 64, "height": 64, "num_inference_steps": 2}


@contextlib.contextmanager
def render_server(factory, *, allowed: tuple[str, ...] = (), api_keys=(), **config: Any) -> Iterator[str]:
    """Serve the real app over a worker pool; waits until every worker has loaded."""
    pool = WorkerPool(factory, PoolConfig(**{"devices": ("cpu",), **config}))
    fetcher = GuardedFetcher(
        user_agent="gen-searcher-tests", policy=AddressPolicy.from_strings(False, allowed), respect_robots=False
    )
    with serve_app(create_app(pool, fetcher=fetcher, api_keys=api_keys)) as base:
        deadline = time.monotonic() + 60
        while httpx.get(base + "/health").json()["status"] != "ok":
            assert time.monotonic() < deadline, "render workers did not start"
            time.sleep(0.05)
        yield base


def image_from_b64(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


async def wait_until(predicate, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_generate_text_and_references_under_concurrent_requests(gated_factory, references) -> None:
    with render_server(gated_factory, devices=("cpu", "cpu"), max_batch=1) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            bodies = [{"prompt": f"picture {i}", "seed": i, **SMALL} for i in range(5)]
            bodies.append(
                {
                    "prompt": "hat on the cat",
                    "seed": 9,
                    "image_urls": [png_data_url(references[0]), png_data_url(references[1])],
                    **SMALL,
                }
            )
            answers: list[Any] = [None] * len(bodies)

            async def post(i: int) -> None:
                answers[i] = await client.post("/generate", json=bodies[i])

            async with anyio.create_task_group() as tg:
                for i in range(len(bodies)):
                    tg.start_soon(post, i)
            for body, response in zip(bodies, answers, strict=True):
                assert response.status_code == 200, response.text
                data = response.json()
                assert data["success"] is True and data["seed"] == body["seed"]
                assert image_from_b64(data["image"]).size == (64, 64)
            health = (await client.get("/health")).json()
    assert health["status"] == "ok" and health["queue"]["depth"] == 0
    assert sum(w["images"] for w in health["workers"]) == 6
    assert all(w["images"] > 0 for w in health["workers"]), "both workers should have served"


@contextlib.asynccontextmanager
async def held_worker(
    client: httpx.AsyncClient, controls: EngineControls, first: dict, queued: list[dict]
) -> AsyncIterator[list[httpx.Response]]:
    """Hold ``first`` on the (only) worker, queue ``queued`` behind it, and let the worker go on exit.

    Yields the list that collects the responses, in the order they arrive.
    """
    responses: list[httpx.Response] = []

    async def post(body: dict) -> None:
        responses.append(await client.post("/generate", json=body))

    controls.gate.clear()
    async with anyio.create_task_group() as tg:
        try:
            tg.start_soon(post, first)
            await wait_until(controls.started.is_set)
            for body in queued:
                tg.start_soon(post, body)
            await wait_until(lambda: httpx.get(client.base_url.join("/health")).json()["queue"]["depth"] == len(queued))
            yield responses
        finally:
            controls.gate.set()


@pytest.mark.anyio
async def test_waiting_requests_with_equal_settings_are_batched(gated_factory, controls: EngineControls) -> None:
    with render_server(gated_factory, max_batch=4) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            queued = [{"prompt": f"queued {i}", "seed": 10 + i, **SMALL} for i in range(3)]
            async with held_worker(client, controls, {"prompt": "first", "seed": 1, **SMALL}, queued) as results:
                pass
    assert all(r.status_code == 200 for r in results)
    assert controls.batch_sizes == [1, 3]
    assert sorted(r.json()["seed"] for r in results) == [1, 10, 11, 12]


@pytest.mark.anyio
async def test_a_batch_that_fails_is_retried_one_request_at_a_time(gated_factory, controls: EngineControls) -> None:
    controls.max_ok_batch = 1  # batches of more than one run out of memory
    with render_server(gated_factory, max_batch=4) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            bodies = [{"prompt": f"p{seed}", "seed": seed, **SMALL} for seed in (1, 2, 3, 4)]
            async with held_worker(client, controls, bodies[0], bodies[1:]) as results:
                pass
            (worker,) = (await client.get("/health")).json()["workers"]
    assert [r.status_code for r in results] == [200] * 4
    assert controls.batch_sizes == [1, 3, 1, 1, 1]
    assert worker["failures"] == 1 and "out of memory" in worker["last_error"]


@pytest.mark.anyio
async def test_full_queue_answers_503_and_the_server_recovers(gated_factory, controls: EngineControls) -> None:
    with render_server(gated_factory, queue_size=1) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            bodies = [{"prompt": "x", "seed": seed, **SMALL} for seed in (1, 2)]
            async with held_worker(client, controls, bodies[0], bodies[1:]) as results:
                full = await client.post("/generate", json={"prompt": "x", "seed": 3, **SMALL})
                assert full.status_code == 503
                assert full.json() == {"success": False, "message": full.json()["message"]}
                assert "queue is full" in full.json()["message"]
                assert full.headers["retry-after"]
                oai = await client.post("/v1/images/generations", json={"prompt": "x", "size": "64x64"})
                assert oai.status_code == 503 and "queue is full" in oai.json()["error"]["message"]
            assert [r.status_code for r in results] == [200, 200]
            again = await client.post("/generate", json={"prompt": "x", "seed": 4, **SMALL})
            assert again.status_code == 200


def _image_server(png: bytes) -> Starlette:
    async def image(request):
        return Response(png, media_type="image/png")

    async def text(request):
        return Response(b"<html>not an image</html>", media_type="text/html")

    return Starlette(routes=[Route("/ref.png", image), Route("/page.html", text)])


@pytest.mark.anyio
async def test_bad_input_gets_clear_errors_and_the_server_keeps_serving(gated_factory, references) -> None:
    with serve_app(_image_server(png_bytes(references[0]))) as images_base, render_server(gated_factory) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            not_png = "data:image/png;base64," + base64.b64encode(b"definitely not a picture").decode()
            cases = [
                ({"prompt": "", **SMALL}, 400, "prompt must be a non-empty string"),
                ({"prompt": "x", "width": 100_000, "height": 64}, 400, "width 100000 is out of range"),
                ({"prompt": "x", "width": 72, "height": 64}, 400, "multiple of 16"),
                ({"prompt": "x", "num_inference_steps": "many"}, 400, "num_inference_steps must be an integer"),
                ({"prompt": "x", "image_urls": [not_png], **SMALL}, 400, "reference image 1 is not a valid image"),
                ({"prompt": "x", "image_urls": [images_base + "/ref.png"], **SMALL}, 400, "refused"),
                (
                    {"prompt": "x", "image_urls": ["http://169.254.169.254/latest/meta-data"], **SMALL},
                    400,
                    "refused",
                ),
                (
                    {"prompt": "x", "image_urls": ["file:///etc/passwd"], **SMALL},
                    400,
                    "only http(s), data: and image://{id} URLs",
                ),
                ({"prompt": "x", "image_urls": [png_data_url(references[0])] * 6, **SMALL}, 400, "at most 5"),
                ({"prompt": "x", "image_urls": "not a list", **SMALL}, 400, "image_urls must be a list"),
            ]
            for body, status, message in cases:
                response = await client.post("/generate", json=body)
                assert response.status_code == status, (body, response.text)
                answer = response.json()
                assert answer["success"] is False and message in answer["message"], answer
                assert "Traceback" not in response.text
            broken = await client.post("/generate", content=b"{not json", headers={"content-type": "application/json"})
            assert broken.status_code == 400 and "not valid JSON" in broken.json()["message"]
            url = await client.post(
                "/v1/images/generations", json={"prompt": "x", "size": "64x64", "response_format": "url"}
            )
            assert url.status_code == 400 and "b64_json" in url.json()["error"]["message"]
            size = await client.post("/v1/images/generations", json={"prompt": "x", "size": "huge"})
            assert size.status_code == 400 and "size must look like" in size.json()["error"]["message"]
            edit = await client.post(
                "/v1/images/edits",
                data={"prompt": "x"},
                files=[("image[]", ("a.png", b"GIF89a-broken", "image/png"))],
            )
            assert edit.status_code == 400 and "not a valid image" in edit.json()["error"]["message"]
            ok = await client.post("/generate", json={"prompt": "still serving", **SMALL})
            assert ok.status_code == 200 and ok.json()["success"]


@pytest.mark.anyio
async def test_reference_urls_are_fetched_when_their_address_is_allowed(gated_factory, references) -> None:
    with serve_app(_image_server(png_bytes(references[0]))) as images_base:
        port = httpx.URL(images_base).port
        with render_server(gated_factory, allowed=(f"127.0.0.1:{port}",)) as base:
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                ok = await client.post(
                    "/generate", json={"prompt": "x", "image_urls": [images_base + "/ref.png"], **SMALL}
                )
                assert ok.status_code == 200, ok.text
                page = await client.post(
                    "/generate", json={"prompt": "x", "image_urls": [images_base + "/page.html"], **SMALL}
                )
                assert page.status_code == 400 and "unsupported content type text/html" in page.json()["message"]


@pytest.mark.anyio
async def test_a_device_fault_reloads_the_worker_and_the_request_is_retried(
    gated_factory, controls: EngineControls
) -> None:
    with render_server(gated_factory) as base:
        assert controls.loads == 1
        controls.fail_renders = 1
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            response = await client.post("/generate", json={"prompt": "x", "seed": 1, **SMALL})
            assert response.status_code == 200, response.text
            (worker,) = (await client.get("/health")).json()["workers"]
    assert controls.loads == 2 and controls.closes >= 1
    assert worker["failures"] == 1 and worker["reloads"] == 1 and worker["state"] == "ready"
    assert worker["consecutive_failures"] == 0
    assert "illegal memory access" in worker["last_error"]


@pytest.mark.anyio
async def test_a_worker_that_keeps_failing_is_taken_out_then_comes_back(
    gated_factory, controls: EngineControls
) -> None:
    with render_server(gated_factory, max_consecutive_failures=2, quarantine_s=3.0, retries=1) as base:
        controls.fail_renders = 2
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            failed = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert failed.status_code == 500
            assert failed.json() == {"success": False, "message": failed.json()["message"]}
            assert "render failed on worker cpu (RuntimeError)" in failed.json()["message"]
            assert "Traceback" not in failed.text and "illegal memory" not in failed.text
            health = await client.get("/health")
            assert health.status_code == 503
            (worker,) = health.json()["workers"]
            assert health.json()["status"] == "down" and worker["state"] == "quarantined"
            assert worker["failures"] == 2 and worker["quarantine_left_s"] > 0
            refused = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert refused.status_code == 503 and "out of service" in refused.json()["message"]
            await wait_until(lambda: httpx.get(base + "/health").json()["status"] == "ok", limit_s=30)
            back = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert back.status_code == 200


@pytest.mark.anyio
async def test_a_worker_that_cannot_load_is_reported_then_readmitted(gated_factory, controls: EngineControls) -> None:
    controls.fail_loads = 2
    pool = WorkerPool(gated_factory, PoolConfig(max_consecutive_failures=2, quarantine_s=3.0))
    with serve_app(create_app(pool)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            await wait_until(lambda: httpx.get(base + "/health").json()["status"] == "down")
            health = await client.get("/health")
            (worker,) = health.json()["workers"]
            assert health.status_code == 503 and worker["state"] == "quarantined"
            assert worker["failures"] == 2 and "load failed" in worker["last_error"]
            refused = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert refused.status_code == 503
            assert "out of service (cpu: load failed: RuntimeError: CUDA error" in refused.json()["message"]
            await wait_until(lambda: httpx.get(base + "/health").json()["status"] == "ok")
            back = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert back.status_code == 200, back.text
    assert controls.loads == 3


@pytest.mark.anyio
async def test_a_model_folder_that_does_not_load_is_named_in_health_and_answers(tmp_path) -> None:
    broken = tmp_path / "broken-pipeline"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "QwenImagePipeline"}')
    options = DiffusersOptions(model=str(broken))
    pool = WorkerPool(lambda device: QwenImageEngine(options, device), PoolConfig(max_consecutive_failures=1))
    with serve_app(create_app(pool)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            await wait_until(lambda: httpx.get(base + "/health").json()["status"] == "down")
            (worker,) = (await client.get("/health")).json()["workers"]
            assert f"cannot load QwenImagePipeline from {str(broken)!r}" in worker["last_error"]
            answer = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert answer.status_code == 503 and "cannot load QwenImagePipeline" in answer.json()["message"]
            assert "Traceback" not in answer.text


@pytest.mark.anyio
async def test_http_client_against_the_server(gated_factory, references) -> None:
    with render_server(gated_factory) as base:
        async with contextlib.aclosing(HttpRenderer(base)) as renderer:
            assert isinstance(renderer, Renderer)
            text = await renderer.render(RenderRequest(prompt="a fox", width=64, height=96, seed=21, steps=2))
            assert text.image.size == (64, 96) and text.seed == 21
            edit = await renderer.render(
                RenderRequest(
                    prompt="a hat", reference_images=references[:3], width=64, height=64, seed=22, steps=2, num_images=2
                )
            )
            assert [im.size for im in edit.images] == [(64, 64), (64, 64)] and edit.seed == 22
            with pytest.raises(InvalidRenderRequest, match="multiple of 32"):
                await renderer.render(RenderRequest(prompt="x", width=80, height=64, steps=2))


@pytest.mark.anyio
async def test_openai_images_client_against_the_server(gated_factory, references) -> None:
    with render_server(gated_factory, api_keys=("secret-key",)) as base:
        plain = OpenAIImagesRenderer(base + "/v1", model="qwen-image", api_key="secret-key")
        extended = OpenAIImagesRenderer(base + "/v1", api_key="secret-key", extra_params=True)
        anonymous = OpenAIImagesRenderer(base + "/v1")
        assert isinstance(plain, Renderer)
        try:
            text = await plain.render(RenderRequest(prompt="a fox", width=96, height=64, steps=2))
            assert text.image.size == (96, 64)
            one = await extended.render(
                RenderRequest(prompt="a hat", reference_images=references[:2], width=64, height=64, seed=5, steps=2)
            )
            two = await extended.render(
                RenderRequest(prompt="a hat", reference_images=references[:2], width=64, height=64, seed=5, steps=2)
            )
            assert one.seed == 5 and one.image.size == (64, 64)
            assert png_bytes(one.image) == png_bytes(two.image)  # the seed reached the server
            async with httpx.AsyncClient(headers={"Authorization": "Bearer secret-key"}, timeout=120) as raw:
                as_json = await raw.post(
                    base + "/v1/images/edits",
                    json={
                        "prompt": "hat",
                        "images": [{"image_url": png_data_url(references[0])}],
                        "size": "64x64",
                        "n": 2,
                    },
                )
            assert as_json.status_code == 200, as_json.text
            assert [image_from_b64(d["b64_json"]).size for d in as_json.json()["data"]] == [(64, 64)] * 2
            with pytest.raises(RendererUnavailable, match="invalid API key"):
                await anonymous.render(RenderRequest(prompt="a fox", width=64, height=64, steps=2))
        finally:
            for client in (plain, extended, anonymous):
                await client.aclose()


def _provider_app(png: bytes, seen: dict[str, Any]) -> Starlette:
    """A hosted images API that answers with result URLs (the OpenAI ``url`` format)."""

    async def generations(request):
        seen["api_auth"] = request.headers.get("authorization")
        seen["body"] = await request.json()
        if seen["body"]["prompt"] == "forbidden":
            return JSONResponse({"error": {"message": "your request was rejected by the safety system"}}, 400)
        return JSONResponse({"created": 1, "data": [{"url": f"{request.base_url}files/1"}]})

    async def redirect(request):
        return RedirectResponse("/files/1.png", status_code=302)

    async def file(request):
        seen["file_auth"] = request.headers.get("authorization")
        return Response(png, media_type="image/png")

    return Starlette(
        routes=[
            Route("/v1/images/generations", generations, methods=["POST"]),
            Route("/files/1", redirect),
            Route("/files/1.png", file),
        ]
    )


@pytest.mark.anyio
async def test_openai_images_client_against_a_provider_that_answers_urls(references) -> None:
    seen: dict[str, Any] = {}
    with serve_app(_provider_app(png_bytes(references[0]), seen)) as base:
        renderer = OpenAIImagesRenderer(base + "/v1", model="gpt-image-1", api_key="sk-provider-key")
        async with contextlib.aclosing(renderer):
            result = await renderer.render(RenderRequest(prompt="a fox", width=64, height=64, steps=2))
            assert result.image.size == references[0].size
            assert seen["api_auth"] == "Bearer sk-provider-key"
            assert seen["file_auth"] is None  # the key never travels to the host of a result URL
            assert set(seen["body"]) == {"prompt", "n", "size", "model"}  # no fields a provider would reject
            with pytest.raises(InvalidRenderRequest, match="images API: your request was rejected"):
                await renderer.render(RenderRequest(prompt="forbidden", width=64, height=64, steps=2))


@pytest.mark.anyio
async def test_http_client_reports_a_busy_server(gated_factory, controls: EngineControls) -> None:
    with render_server(gated_factory, queue_size=1) as base:
        async with (
            contextlib.aclosing(HttpRenderer(base)) as renderer,
            httpx.AsyncClient(base_url=base, timeout=120) as client,
            held_worker(client, controls, {"prompt": "x", **SMALL}, [{"prompt": "y", **SMALL}]),
        ):
            with pytest.raises(RendererBusy, match="queue is full"):
                await renderer.render(RenderRequest(prompt="x", width=64, height=64, steps=2))


@pytest.mark.anyio
async def test_a_render_that_takes_too_long_answers_504(gated_factory, controls: EngineControls) -> None:
    # The gate holds the first render until after its deadline, whatever the machine's speed; the
    # deadline itself is generous so that the second, ungated render meets it on a loaded machine.
    controls.gate.clear()
    with render_server(gated_factory, request_timeout_s=5) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            slow = await client.post("/generate", json={"prompt": "x", **SMALL})
            controls.gate.set()
            assert slow.status_code == 504 and "timed out after 5 s" in slow.json()["message"]
            ok = await client.post("/generate", json={"prompt": "x", **SMALL})
            assert ok.status_code == 200


@pytest.mark.anyio
async def test_deeply_nested_or_malformed_json_gets_400_and_the_server_keeps_serving(gated_factory) -> None:
    deep = 100_000
    bodies: list[tuple[bytes, str]] = [
        (b"[" * deep + b"]" * deep, "nested too deeply"),
        (b'{"a":' * deep + b"1" + b"}" * deep, "nested too deeply"),
        (b'{"prompt": ' + b"[" * deep + b"]" * deep + b"}", "nested too deeply"),
        (b'{"prompt": "x", "true_cfg_scale": NaN}', "not valid JSON"),
        (b'{"prompt": "x", "true_cfg_scale": -Infinity}', "not valid JSON"),
        (b'{"prompt": "x", "seed": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b'{"prompt": "\xff\xfe"}', "not valid JSON"),
        (b'{"prompt": "x", "width": 1e999, "height": 64}', "width must be an integer"),
        (b'{"prompt": "x", "true_cfg_scale": 1e999}', "true_cfg_scale must be a number"),
        (b'{"prompt": "\\ud800 lone"}', "prompt must be valid Unicode"),
        (b'{"prompt": {"text": "x"}}', "prompt must be a string"),
        (b'{"prompt": "x", "size": [64, 64]}', "size must look like"),
        (b"[1, 2]", "must be a JSON object"),
    ]
    json_header = {"content-type": "application/json"}
    with render_server(gated_factory) as base:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for body, message in bodies:
                response = await client.post("/generate", content=body, headers=json_header)
                assert response.status_code == 400, (body[:60], response.text)
                assert message in response.json()["message"] and "Traceback" not in response.text
                for path in ("/v1/images/generations", "/v1/images/edits"):  # the OpenAI face, same answers
                    openai = await client.post(path, content=body, headers=json_header)
                    assert openai.status_code == 400, (path, body[:60], openai.text)
                    assert message in openai.json()["error"]["message"]
            assert (await client.get("/health")).json()["status"] == "ok"
            ok = await client.post("/generate", json={"prompt": "still serving", **SMALL})
            assert ok.status_code == 200 and ok.json()["success"]
