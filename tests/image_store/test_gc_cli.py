"""``gen-searcher images gc``: retention on demand, for the disk and the S3 store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from safe_io.image_store import DiskImageStore, create_image_store
from search_tools.settings import ImageSettings
from tests.browse import content
from tests.support.s3 import S3Server


def test_gc_deletes_images_unused_for_longer_than_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DiskImageStore(tmp_path / "images")
    old = anyio.run(store.put, content.jpeg_bytes((90, 90), (1, 1, 1)), "image/jpeg")
    new = anyio.run(store.put, content.jpeg_bytes((90, 90), (200, 1, 1)), "image/jpeg")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(tmp_path / "images" / old.id[4:6] / f"{old.id}.json", (ten_days_ago, ten_days_ago))
    monkeypatch.setenv("GEN_SEARCHER_IMAGES__DIR", str(tmp_path / "images"))
    runner = CliRunner()
    preview = runner.invoke(build_app(), ["images", "gc", "--older-than-days", "5", "--dry-run"])
    assert preview.exit_code == 0 and "would delete 1 images" in preview.output
    assert anyio.run(store.contains, old.id)
    done = runner.invoke(build_app(), ["images", "gc", "--older-than-days", "5"])
    assert done.exit_code == 0 and "deleted 1 images" in done.output and "kept 1 images" in done.output
    assert not anyio.run(store.contains, old.id) and anyio.run(store.contains, new.id)


def test_gc_on_s3_uses_the_standard_aws_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    section = s3_server.images_settings(tmp_path / "cache")
    store = create_image_store(ImageSettings(**section))
    record = anyio.run(store.put, content.jpeg_bytes((90, 90), (9, 9, 9)), "image/jpeg")
    for name, value in s3_server.env().items():  # credentials and endpoint only from the environment
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GEN_SEARCHER_IMAGES__URL", section["url"])
    monkeypatch.setenv("GEN_SEARCHER_IMAGES__CACHE_DIR", str(tmp_path / "gc-cache"))
    runner = CliRunner()
    kept = runner.invoke(build_app(), ["images", "gc", "--older-than-days", "1"])
    assert kept.exit_code == 0 and "deleted 0 images" in kept.output and "kept 1 images" in kept.output
    time.sleep(1.1)  # S3 times have one-second resolution
    done = runner.invoke(build_app(), ["images", "gc", "--older-than-days", "0"])
    assert done.exit_code == 0 and "deleted 1 images" in done.output, done.output
    fresh = create_image_store(ImageSettings(**{**section, "cache_max_bytes": 0}))
    assert not anyio.run(fresh.contains, record.id)
    assert s3_server.secret_access_key not in kept.output + done.output


def test_in_process_commands_refuse_an_unusable_store_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("GEN_SEARCHER_IMAGES__DIR", str(blocker / "images"))
    monkeypatch.setenv("GEN_SEARCHER_SEARCH__BACKEND", "local")
    monkeypatch.setenv("GEN_SEARCHER_CACHE__PATH", str(tmp_path / "cache.db"))
    for argv in (["call", "search", '{"queries": ["x"]}'], ["images", "gc", "--older-than-days", "1"]):
        result = CliRunner().invoke(build_app(), argv)
        assert result.exit_code == 2, result.output
        assert "image store folder" in result.output and "images.dir" in result.output
        assert "Traceback" not in result.output
