"""Fixtures of the benchmark tests: a scripted judge on loopback and tiny images."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmark.judge import JudgeClient
from tests.benchmark.helpers import RenderServer, fast_settings
from tests.support.env import clear_settings_environment
from tests.support.loopback import serve_app
from tests.support.scripted_judge import ScriptedJudge, serve_judge


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own judge, render or provider settings must not change what a test run does."""
    clear_settings_environment(monkeypatch)


@pytest.fixture
def scripted_judge() -> ScriptedJudge:
    return ScriptedJudge()


@pytest.fixture
def judge_url(scripted_judge: ScriptedJudge) -> Iterator[str]:
    with serve_judge(scripted_judge) as url:
        yield url


@pytest.fixture
async def judge(judge_url: str) -> JudgeClient:
    client = JudgeClient(fast_settings(judge_url))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def render_server() -> RenderServer:
    return RenderServer()


@pytest.fixture
def render_url(render_server: RenderServer) -> Iterator[str]:
    with serve_app(render_server.app()) as url:
        yield url
