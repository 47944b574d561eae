"""The render server's guards: Host/Origin policy, clients that leave, scrubbed errors, loading health."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from gen_searcher_core.host_policy import HostPolicy
from render_tools.base import InvalidRenderRequest, RenderRequest, RenderResult
from render_tools.server import create_app
from render_tools.workers import PoolConfig, WorkerPool
from tests.support.loopback import serve_app

SMALL = {"width": 64, "height": 64, "num_inference_steps": 2}
KEY = "rk-live-0123456789abcdef"


class SolidEngine:
    """An engine (the pool's seam) that paints one colour; ``gate`` holds renders, ``loaded`` holds the load."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.loaded = threading.Event()
        self.loaded.set()
        self.started = threading.Event()
        self.prompts: list[str] = []

    def load(self) -> None:
        if not self.loaded.wait(timeout=30):
            raise TimeoutError("test never let the load finish")

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        self.prompts += [r.prompt for r in requests]
        self.started.set()
        if not self.gate.wait(timeout=30):
            raise TimeoutError("test gate never opened")
        if requests[0].prompt == "echo the key":
            raise InvalidRenderRequest(f"upstream refused key {KEY}")
        return [
            RenderResult([Image.new("RGB", (r.width, r.height), "red")], int(r.seed or 0), 0.0, "solid")
            for r in requests
        ]

    def close(self) -> None:
        pass


@contextlib.contextmanager
def solid_server(engine: SolidEngine, *, wait_ready: bool = True, **config: Any) -> Iterator[str]:
    pool = WorkerPool(lambda device: engine, PoolConfig(devices=("cpu",), **config))
    app = create_app(pool, api_keys=[KEY], host_policy=HostPolicy("127.0.0.1", ["render.internal"]))
    with serve_app(app) as base:
        deadline = time.monotonic() + 30
        while wait_ready and httpx.get(base + "/health").json()["status"] != "ok":
            assert time.monotonic() < deadline, "render worker did not start"
            time.sleep(0.02)
        yield base


AUTH = {"Authorization": f"Bearer {KEY}"}


def test_foreign_host_and_origin_are_refused_like_the_tool_server() -> None:
    with solid_server(SolidEngine()) as base:
        body = {"prompt": "a red square", **SMALL}
        evil_host = httpx.post(base + "/generate", json=body, headers={**AUTH, "Host": "evil.example"})
        assert evil_host.status_code == 421
        evil_origin = httpx.post(base + "/generate", json=body, headers={**AUTH, "Origin": "http://evil.example"})
        assert evil_origin.status_code == 403
        named = httpx.post(base + "/generate", json=body, headers={**AUTH, "Host": "render.internal:8100"})
        assert named.status_code == 200 and named.json()["success"] is True
        # health stays open for probes; a normal request still works
        assert httpx.get(base + "/health", headers={"Host": "evil.example"}).status_code == 200
        assert httpx.post(base + "/generate", json=body, headers=AUTH).status_code == 200


@pytest.mark.anyio
async def test_a_client_that_leaves_frees_its_place_and_is_not_rendered() -> None:
    engine = SolidEngine()
    with solid_server(engine, queue_size=1) as base:
        engine.gate.clear()
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=AUTH) as client:
            answers: dict[str, httpx.Response] = {}

            async def post(prompt: str) -> None:
                answers[prompt] = await client.post("/generate", json={"prompt": prompt, **SMALL})

            async with anyio.create_task_group() as tg:
                tg.start_soon(post, "first")  # holds the only worker
                await anyio.to_thread.run_sync(engine.started.wait, 30)
                # This one waits in the (one-place) queue, then its client gives up.
                async with httpx.AsyncClient(base_url=base, timeout=0.5, headers=AUTH) as impatient:
                    with pytest.raises(httpx.ReadTimeout):
                        await impatient.post("/generate", json={"prompt": "left early", **SMALL})
                deadline = time.monotonic() + 10
                while (await client.get("/health")).json()["queue"]["depth"]:
                    assert time.monotonic() < deadline, "the abandoned request stayed in the queue"
                    await anyio.sleep(0.05)
                tg.start_soon(post, "fresh")  # the freed place takes it: no 503
                await anyio.sleep(0.3)
                engine.gate.set()
    assert answers["first"].status_code == 200 and answers["fresh"].status_code == 200, answers["fresh"].text
    assert engine.prompts == ["first", "fresh"]


def test_errors_are_scrubbed_of_the_api_key() -> None:
    with solid_server(SolidEngine()) as base:
        answer = httpx.post(base + "/generate", json={"prompt": "echo the key", **SMALL}, headers=AUTH)
        assert answer.status_code == 400
        assert KEY not in answer.text and "upstream refused key ***" in answer.json()["message"]
        oai = httpx.post(
            base + "/v1/images/generations", json={"prompt": "echo the key", "size": "64x64"}, headers=AUTH
        )
        assert oai.status_code == 400 and KEY not in oai.text


def test_health_says_loading_until_the_model_is_loaded() -> None:
    engine = SolidEngine()
    engine.loaded.clear()
    with solid_server(engine, wait_ready=False) as base:
        assert httpx.get(base + "/health").json()["status"] == "loading"
        engine.loaded.set()
        deadline = time.monotonic() + 10
        while httpx.get(base + "/health").json()["status"] != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.02)


@pytest.mark.slow
def test_an_abandoned_batch_stops_at_the_next_step(shared_engine) -> None:
    request = RenderRequest(prompt="a cat", width=64, height=64, steps=6, seed=1, true_cfg_scale=1.0)
    stopped = shared_engine.render_batch([request], should_stop=lambda: True)
    assert stopped[0].extra["interrupted"] is True and stopped[0].image.size == (64, 64)
    done = shared_engine.render_batch([request], should_stop=lambda: False)
    assert done[0].extra["interrupted"] is False
