"""The ``[judge]`` section: documented ``GEN_SEARCHER_JUDGE_<KEY>`` names, the settings file, the key fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.settings import BenchConfig, JudgeSettings


@pytest.fixture(autouse=True)
def no_judge_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("GEN_SEARCHER_JUDGE") or name in ("OPENAI_API_KEY", "GEN_SEARCHER_CONFIG"):
            monkeypatch.delenv(name)


def test_file_then_environment_then_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[judge]\nmodel = "from-file"\nmax_attempts = 3\nbase_url = "http://judge.local/v1"\n')
    loaded = BenchConfig.load(config)
    assert (loaded.judge.model, loaded.judge.max_attempts, loaded.judge.base_url) == (
        "from-file",
        3,
        "http://judge.local/v1",
    )
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_MODEL", "from-env")
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_BACKOFF_INITIAL_S", "0.25")
    loaded = BenchConfig.load(config)
    assert (loaded.judge.model, loaded.judge.max_attempts, loaded.judge.backoff_initial_s) == ("from-env", 3, 0.25)
    settings = loaded.judge_settings(model="from-option", base_url=None)
    assert settings.model == "from-option" and settings.base_url == "http://judge.local/v1"


def test_the_key_falls_back_to_openai_and_stays_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BenchConfig.load().judge_settings().api_key is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert BenchConfig.load().judge_settings().api_key.get_secret_value() == "sk-openai"  # type: ignore[union-attr]
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_API_KEY", "sk-judge")
    settings = BenchConfig.load().judge_settings()
    assert settings.api_key.get_secret_value() == "sk-judge"  # type: ignore[union-attr]
    assert "sk-judge" not in repr(settings) and "sk-judge" not in str(BenchConfig.load())


def test_judge_settings_built_alone_still_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_JUDGE_MAX_ATTEMPTS", "2")
    assert JudgeSettings(model="m").max_attempts == 2  # the verl reward builds it this way
