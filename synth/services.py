"""The pipeline's services, each behind its own concurrency and rate limit, with their costs counted.

* teacher and SFT policy: OpenAI-compatible chat models driven through :mod:`policy`'s own
  driver (so trajectories are in exactly the protocol SFT and GRPO use);
* judge: :class:`benchmark.judge.JudgeClient` (its own concurrency bound and rate limit),
  also handed to :func:`verl_recipes.reward.score_episode` so that judging is the GRPO reward's;
* tools and renders: an MCP server, reached like the policy reaches it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
from aiolimiter import AsyncLimiter

from benchmark.judge import JudgeClient
from benchmark.settings import JudgeSettings
from gen_searcher_core.chat_client import ChatReply
from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.loopback import free_port, wait_until_healthy
from policy.chat import OpenAIChatModel, Sampling
from synth.settings import ServiceSettings
from verl_recipes.reward import JudgeRegistry


class ServiceError(UserFacingError, RuntimeError):
    """A service the run needs is missing or unreachable."""


class Costs:
    """Counts of paid work (calls, tokens, renders, tool calls) for the manifest; one per run process."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, key: str, value: int = 1) -> None:
        self.counts[key] += value

    def to_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


class Limits:
    """A concurrency bound plus an optional rate limit (request starts per second)."""

    def __init__(self, max_concurrency: int, rate_limit_per_s: float | None) -> None:
        self._slots = anyio.Semaphore(max_concurrency)
        self._rate = AsyncLimiter(rate_limit_per_s, 1.0) if rate_limit_per_s else None

    @contextlib.asynccontextmanager
    async def slot(self) -> Any:
        async with self._slots:
            if self._rate is not None:
                await self._rate.acquire()
            yield


class ChatService:
    """An OpenAI-compatible chat model (teacher or policy) under its limits; ``chat_for(seed)`` is a
    :class:`policy.chat.ChatModel` that sends ``seed`` (rollout ``i`` of an item samples with ``seed + i``)."""

    def __init__(self, name: str, settings: ServiceSettings, costs: Costs) -> None:
        if not settings.given:
            raise ServiceError(f"the {name} needs a URL and a model name")
        self.name = name
        self.settings = settings
        self.costs = costs
        self.limits = Limits(settings.max_concurrency, settings.rate_limit_per_s)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_s, connect=30.0))

    @property
    def model(self) -> str:
        return str(self.settings.model)

    def chat_for(self, seed: int | None = None, *, temperature: float | None = None) -> _LimitedModel:
        sampling = Sampling(
            temperature=self.settings.temperature if temperature is None else temperature,
            max_tokens=self.settings.max_tokens,
            extra={"seed": seed} if seed is not None else {},
        )
        model = OpenAIChatModel(
            str(self.settings.url),
            self.model,
            api_key=self.settings.api_key(),
            sampling=sampling,
            timeout_s=self.settings.timeout_s,
            max_attempts=self.settings.max_attempts,
            http_client=self._http,
        )
        return _LimitedModel(self, model)

    async def aclose(self) -> None:
        await self._http.aclose()


class _LimitedModel:
    def __init__(self, service: ChatService, model: OpenAIChatModel) -> None:
        self._service = service
        self._model = model

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply:
        async with self._service.limits.slot():
            reply = await self._model.chat(messages)
        name = self._service.name
        self._service.costs.add(f"{name}_calls")
        usage = reply.usage or {}
        for key in ("prompt_tokens", "completion_tokens"):
            if isinstance(usage.get(key), int):
                self._service.costs.add(f"{name}_{key}", usage[key])
        return reply


class CountingJudge(JudgeClient):
    """The judge client, counting requests and tokens into the run's costs."""

    def __init__(self, settings: JudgeSettings, costs: Costs) -> None:
        super().__init__(settings)
        self.costs = costs

    async def complete(self, messages: Sequence[Mapping[str, Any]]) -> str:
        self.costs.add("judge_calls")
        return await super().complete(messages)


def judge_settings(settings: ServiceSettings) -> JudgeSettings:
    if not settings.given:
        raise ServiceError("the judge needs a URL and a model name")
    return JudgeSettings(
        base_url=str(settings.url),
        model=str(settings.model),
        api_key=settings.api_key(),
        timeout_s=settings.timeout_s,
        max_concurrency=settings.max_concurrency,
        rate_limit_per_s=settings.rate_limit_per_s,
        max_attempts=settings.max_attempts,
        max_tokens=settings.max_tokens,
        backoff_initial_s=0.5,
    )


class RunJudges(JudgeRegistry):
    """The registry the reward asks for its judge: always this run's one counting client
    (so the reward's judging shares the run's judge limits)."""

    def __init__(self, judge: JudgeClient) -> None:
        super().__init__()
        self.judge = judge

    def get(self, settings: JudgeSettings) -> JudgeClient:
        return self.judge


@contextlib.contextmanager
def local_tool_server(log: Path, config_file: Path | None = None, timeout_s: float = 60.0) -> Iterator[str]:
    """This installation's ``gen-searcher serve`` on a loopback port; yields its MCP URL.

    Over HTTP rather than stdio because the reward's render goes through a URL
    (:func:`verl_recipes.reward.render_answer`); the settings are the user's own
    (``--config`` or ``$GEN_SEARCHER_CONFIG`` and the environment).
    """
    port = free_port()
    args = [sys.executable, "-m", "mcp_server", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if config_file is not None:
        args += ["--config", str(config_file)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            base = f"http://127.0.0.1:{port}"
            problem = wait_until_healthy(base, process, timeout_s)
            if problem:
                raise ServiceError(f"the local tool server {problem} (log: {log})")
            yield base + "/mcp"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
