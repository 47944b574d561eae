"""Fixtures of the page tests: a headless Chromium (skipped where it or Playwright is missing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.reports.browser import LAUNCH_ARGS, chromium_path
from tests.support.env import clear_settings_environment


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own settings must not change what a test run does."""
    clear_settings_environment(monkeypatch)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
