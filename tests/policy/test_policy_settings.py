"""The ``[policy]`` section: the chat model's key under its documented names, in the house settings style."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.chat import OpenAIChatModel
from policy.settings import PolicyConfig, chat_api_key


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GEN_SEARCHER_POLICY_API_KEY",
        "GEN_SEARCHER_POLICY__API_KEY",
        "OPENAI_API_KEY",
        "GEN_SEARCHER_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_key_comes_from_the_documented_variable_then_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PolicyConfig.load().chat_api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert chat_api_key().get_secret_value() == "sk-openai"  # type: ignore[union-attr]
    monkeypatch.setenv("GEN_SEARCHER_POLICY_API_KEY", "sk-policy")
    assert chat_api_key().get_secret_value() == "sk-policy"  # type: ignore[union-attr]
    monkeypatch.setenv("GEN_SEARCHER_POLICY__API_KEY", "sk-nested")  # the house spelling wins when both are set
    assert chat_api_key().get_secret_value() == "sk-nested"  # type: ignore[union-attr]
    assert "sk-" not in repr(PolicyConfig.load())


def test_the_key_can_live_in_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[policy]\napi_key = "sk-file"\n')
    assert chat_api_key(config).get_secret_value() == "sk-file"  # type: ignore[union-attr]
    monkeypatch.setenv("GEN_SEARCHER_POLICY_API_KEY", "sk-env")  # the environment beats the file
    assert chat_api_key(config).get_secret_value() == "sk-env"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_the_chat_model_falls_back_to_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_SEARCHER_POLICY_API_KEY", "sk-policy")
    async with OpenAIChatModel("http://127.0.0.1:9/v1", "m") as model:
        assert model._client._headers == {"Authorization": "Bearer sk-policy"}
    async with OpenAIChatModel("http://127.0.0.1:9/v1", "m", api_key="sk-given") as model:
        assert model._client._headers == {"Authorization": "Bearer sk-given"}
