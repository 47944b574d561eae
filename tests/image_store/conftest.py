"""Fixtures of the image store tests: a moto S3 server on loopback and one store per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from safe_io.image_store import ImageStore, create_image_store
from search_tools.settings import ImageSettings
from tests.search.conftest import redis_url  # noqa: F401  (a real redis-server, shared fixture)
from tests.support.env import clear_settings_environment
from tests.support.s3 import S3Server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings_environment(monkeypatch)
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def store_settings(kind: str, tmp_path: Path, s3: S3Server | None, **extra: Any) -> ImageSettings:
    if kind == "disk":
        return ImageSettings(dir=tmp_path / "images", **extra)
    assert s3 is not None
    cache = {"cache_max_bytes": 0} if kind == "s3-nocache" else {}
    return ImageSettings(**s3.images_settings(tmp_path / "cache", **cache), **extra)


@pytest.fixture(params=["disk", "s3", "s3-nocache"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """Builds stores of the parametrized kind; two calls with ``share=True`` share one backing store."""
    s3 = request.getfixturevalue("s3_server") if store_kind != "disk" else None
    shared: dict[str, ImageSettings] = {}

    def make(share: bool = False, **extra: Any) -> ImageStore:
        if share and "settings" in shared:
            base = shared["settings"]
            # A second replica: same folder or bucket/prefix, its own local cache.
            update = {"cache_dir": tmp_path / f"cache-{len(shared)}"} if store_kind != "disk" else {}
            shared[str(len(shared))] = base
            return create_image_store(base.model_copy(update=update))
        settings = store_settings(store_kind, tmp_path, s3, **extra)
        if share:
            shared["settings"] = settings
        return create_image_store(settings)

    return make


@pytest.fixture
async def store(make_store: Any) -> ImageStore:
    built = make_store()
    await built.check()
    return built


@pytest.fixture(scope="session")
def s3_auth_server() -> Iterator[S3Server]:
    """A moto server that checks signatures: wrong credentials are refused as AWS refuses them."""
    server = S3Server(auth=True)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
