"""Keep a developer's own configuration out of the tests."""

from __future__ import annotations

import os

import pytest

# Variables the server reads besides its GEN_SEARCHER_* settings: provider keys and endpoints.
PROVIDER_VARIABLES = ("OPENAI_API_KEY", "SERPER_API_KEY", "BRAVE_API_KEY", "SEARXNG_URL", "JINA_API_KEY")


def clear_settings_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every GEN_SEARCHER_* variable and provider key for the current test."""
    for name in list(os.environ):
        if name.startswith("GEN_SEARCHER_") or name in PROVIDER_VARIABLES:
            monkeypatch.delenv(name, raising=False)
