"""Settings: defaults < TOML file < environment; comma lists; secrets never printed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mcp_server.metrics import Metrics
from mcp_server.settings import load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gen-searcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.search.backend == "auto"
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8000
    assert settings.cache.mode == "readwrite" and settings.cache.url is None
    assert settings.cache.path.name == "cache.db"
    assert settings.auth_tokens == [] and settings.allowed_hosts == []


def test_toml_overrides_defaults_and_environment_overrides_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _toml(
        tmp_path,
        '[search]\nbackend = "local"\nindex = "/data/from-toml.db"\n'
        '[cache]\nttl_s = 60\nmode = "readonly"\n'
        "[server]\nport = 9001\n",
    )
    from_file = load_settings(config)
    assert from_file.search.backend == "local" and from_file.search.index == Path("/data/from-toml.db")
    assert from_file.cache.ttl_s == 60 and from_file.cache.mode == "readonly"
    assert from_file.server.port == 9001
    assert from_file.search.timeout_s == 15.0  # untouched keys keep their defaults

    monkeypatch.setenv("GEN_SEARCHER_SEARCH__BACKEND", "searxng")
    monkeypatch.setenv("GEN_SEARCHER_CACHE__MODE", "replay")
    monkeypatch.setenv("GEN_SEARCHER_CACHE__URL", "redis://127.0.0.1:6379/2")
    monkeypatch.setenv("GEN_SEARCHER_CACHE__PATH", str(tmp_path / "env-cache.db"))
    with_env = load_settings(config)
    assert with_env.search.backend == "searxng"
    assert with_env.search.index == Path("/data/from-toml.db")  # same section, key not in env: file wins
    assert with_env.cache.mode == "replay" and with_env.cache.ttl_s == 60
    assert with_env.cache.url == "redis://127.0.0.1:6379/2"
    assert with_env.cache.path == tmp_path / "env-cache.db"


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_CONFIG", str(_toml(tmp_path, '[search]\nbackend = "brave"\n')))
    assert load_settings().search.backend == "brave"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_bad_value_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_CACHE__MODE", "sometimes")
    with pytest.raises(ValueError, match="mode"):
        load_settings()


def test_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_AUTH_TOKENS", "alpha-token, beta-token,,")
    monkeypatch.setenv("GEN_SEARCHER_ALLOWED_HOSTS", "search.internal,lb.example:8443")
    settings = load_settings()
    assert [token.get_secret_value() for token in settings.auth_tokens] == ["alpha-token", "beta-token"]
    assert settings.allowed_hosts == ["search.internal", "lb.example:8443"]


SECRETS = ("serper-key-123456", "brave-key-123456", "token-abcdef", "summary-key-123456", "searx-pw-123456")


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SERPER_API_KEY", "serper-key-123456")
    monkeypatch.setenv("BRAVE_API_KEY", "brave-key-123456")
    monkeypatch.setenv("GEN_SEARCHER_AUTH_TOKENS", "token-abcdef")
    monkeypatch.setenv("GEN_SEARCHER_SUMMARY__API_KEY", "summary-key-123456")
    monkeypatch.setenv("SEARXNG_URL", "https://me:searx-pw-123456@searx.example")
    settings = load_settings()
    assert settings.serper_api_key is not None and settings.serper_api_key.get_secret_value() == "serper-key-123456"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    dumped = settings.model_dump_json()
    for shown in (repr(settings), str(settings), dumped, caplog.text, Metrics().render().decode()):
        for secret in SECRETS:
            assert secret not in shown


def test_an_empty_index_variable_means_no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_SEARCH__INDEX", "")
    assert load_settings().search.index is None
    monkeypatch.setenv("GEN_SEARCHER_SEARCH__INDEX", "/data/web.db")
    assert load_settings().search.index == Path("/data/web.db")
