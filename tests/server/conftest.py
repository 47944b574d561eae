"""Fixtures of the server tests: a tiny local index and hermetic settings under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.settings import Settings
from tests.support.env import clear_settings_environment
from tests.support.tool_server import tool_server_settings, write_index


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own GEN_SEARCHER_* or provider variables must not leak into these tests."""
    clear_settings_environment(monkeypatch)


@pytest.fixture
def index_db(tmp_path: Path) -> Path:
    return write_index(tmp_path)


@pytest.fixture
def settings(tmp_path: Path, index_db: Path) -> Settings:
    return tool_server_settings(tmp_path, index=index_db)
