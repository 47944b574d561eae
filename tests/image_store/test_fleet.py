"""A fleet of stateless replicas sharing one Redis cache and one S3 image store, as deployed.

Two ``gen-searcher serve --stateless`` processes, a client alternating between
them; then the S3 server freezes mid-run and comes back. Bad store settings
make ``serve`` refuse to start with one line and no secret.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types
import pytest
from mcp import Client

from tests.image_store.fleet import (
    SERPER_KEY,
    FleetWeb,
    fleet_app,
    run_serve_expecting_failure,
    serve,
    server_env,
)
from tests.support.loopback import free_port, serve_app
from tests.support.s3 import BUCKET, S3Server

SECRET = "s3cr3t-never-printed-7c1d"


def text_of(result: mcp_types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mcp_types.TextContent))


def base_env(web_base: str, **extra: str) -> dict[str, str]:
    return server_env(
        {
            "GEN_SEARCHER_SEARCH__BACKEND": "serper",
            "GEN_SEARCHER_SEARCH__SERPER_URL": web_base,
            "SERPER_API_KEY": SERPER_KEY,
            "GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS": "true",
            "GEN_SEARCHER_FETCH__RESPECT_ROBOTS": "false",
            **extra,
        }
    )


@pytest.mark.slow
@pytest.mark.anyio
async def test_two_replicas_share_images_cache_and_single_flight(
    tmp_path: Path, s3_server: S3Server, redis_url: str
) -> None:
    web = FleetWeb()
    with serve_app(fleet_app(web)) as web_base:
        web.base = web_base

        def replica_env(n: int) -> dict[str, str]:
            return base_env(
                web_base,
                **s3_server.env(),
                GEN_SEARCHER_IMAGES__URL=f"s3://{BUCKET}/fleet",
                GEN_SEARCHER_IMAGES__CACHE_DIR=str(tmp_path / f"cache-{n}"),
                GEN_SEARCHER_IMAGES__DIR=str(tmp_path / f"unused-{n}"),
                GEN_SEARCHER_IMAGES__TIMEOUT_S="5",
                GEN_SEARCHER_CACHE__URL=redis_url,
                GEN_SEARCHER_RENDER__BACKEND="http",
                GEN_SEARCHER_RENDER__URL=web_base,
            )

        with (
            serve(replica_env(1), tmp_path / "a.log") as a,
            serve(replica_env(2), tmp_path / "b.log") as b,
        ):
            async with Client(f"{a}/mcp") as first, Client(f"{b}/mcp") as second:
                clients = [first, second]
                results: list[Any] = [None] * 6

                async def search(i: int) -> None:
                    results[i] = await clients[i % 2].call_tool("image_search", {"query": "lighthouse", "top_k": 3})

                async with anyio.create_task_group() as tg:  # a burst split over both replicas
                    for i in range(6):
                        tg.start_soon(search, i)
                assert all(not r.is_error for r in results), [text_of(r) for r in results]
                assert web.provider_calls["lighthouse"] <= 2  # at most one provider call per replica
                ids = [image["id"] for image in results[0].structured_content["images"]]
                assert len(ids) == 3 and all(r.structured_content["images"][0]["id"] == ids[0] for r in results)

                downloads = sum(web.downloads.values())
                again = await second.call_tool("image_search", {"query": "lighthouse", "top_k": 3})
                assert [i["id"] for i in again.structured_content["images"]] == ids
                assert sum(web.downloads.values()) == downloads  # stored images are reused by source URL

                # Found on one replica, used on the other.
                rendered = await second.call_tool(
                    "render",
                    {"prompt": "a lighthouse at dusk", "reference_image_ids": ids[:2], "width": 64, "height": 64},
                )
                assert not rendered.is_error, text_of(rendered)
                assert web.render_references[-1] == 2
                render_id = rendered.structured_content["id"]
                for client, image_id in ((second, ids[0]), (first, render_id)):
                    blob = (await client.read_resource(f"image://{image_id}")).contents[0]
                    assert blob.mime_type == "image/png" and blob.blob
                async with httpx.AsyncClient(timeout=30) as http:
                    for base in (a, b):
                        for image_id in (ids[1], render_id):
                            response = await http.get(f"{base}/images/{image_id}")
                            assert response.status_code == 200, response.text
                            assert response.headers["content-type"].startswith("image/")

                # The object store freezes mid-run: calls that need it fail clearly, and nothing hangs.
                s3_server.pause()
                try:
                    started = time.monotonic()
                    down = await first.call_tool("image_search", {"query": "harbour", "top_k": 2})
                    assert down.is_error and "image store s3://" in text_of(down) and "unavailable" in text_of(down)
                    async with httpx.AsyncClient(timeout=60) as http:
                        missing = await http.get(f"{b}/images/img_0123456789abcdef")
                    assert missing.status_code == 503 and "unavailable" in missing.json()["error"]
                    assert time.monotonic() - started < 60
                finally:
                    s3_server.resume()
                back = await first.call_tool("image_search", {"query": "harbour", "top_k": 2})
                assert not back.is_error, text_of(back)
                image_id = back.structured_content["images"][0]["id"]
                blob = (await second.read_resource(f"image://{image_id}")).contents[0]
                assert blob.blob
        for log in ("a.log", "b.log"):
            assert SERPER_KEY not in (tmp_path / log).read_text()


def _bad_store_env(tmp_path: Path, case: str, plain: S3Server, auth: S3Server) -> tuple[dict[str, str], str]:
    web = "http://127.0.0.1:9"  # never contacted: the store is checked before anything is served
    if case == "missing bucket":
        env = {**plain.env(), "AWS_SECRET_ACCESS_KEY": SECRET}
        return base_env(web, **env, GEN_SEARCHER_IMAGES__URL="s3://no-such-bucket-here/p"), "the bucket does not exist"
    if case == "wrong credentials":
        env = {**auth.env(), "AWS_SECRET_ACCESS_KEY": SECRET}
        return base_env(web, **env, GEN_SEARCHER_IMAGES__URL=f"s3://{BUCKET}/p"), "the credentials were refused"
    if case == "unreachable endpoint":
        env = {**plain.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
        return (
            base_env(
                web,
                **env,
                GEN_SEARCHER_IMAGES__URL=f"s3://{BUCKET}/p",
                GEN_SEARCHER_IMAGES__SECRET_ACCESS_KEY=SECRET,
                GEN_SEARCHER_IMAGES__TIMEOUT_S="1",
            ),
            "the endpoint did not answer",
        )
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return base_env(web, GEN_SEARCHER_IMAGES__DIR=str(blocker / "images")), "set images.dir (GEN_SEARCHER_IMAGES__DIR)"


@pytest.mark.parametrize("case", ["missing bucket", "wrong credentials", "unreachable endpoint", "unusable folder"])
def test_serve_refuses_a_bad_image_store_with_one_line(
    tmp_path: Path, case: str, s3_server: S3Server, s3_auth_server: S3Server
) -> None:
    env, expected = _bad_store_env(tmp_path, case, s3_server, s3_auth_server)
    status, output = run_serve_expecting_failure(env)
    assert status == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], output
    assert "Traceback" not in output and SECRET not in output
