"""The GRPO reward: render the episode's answer, judge the image and the plan, combine.

verl 0.9.1 loads it with ``reward.custom_reward_function.path=<this file>`` and
``name=compute_score``; its reward managers await coroutine functions and pass
``data_source``, ``solution_str``, ``ground_truth`` and ``extra_info`` (into which
the agent loop's ``extra_fields`` are merged, so ``extra_info["gen_searcher"]``
holds the episode's outcome: an :class:`~gen_searcher_core.episode_record.EpisodeRecord`'s
JSON dump, read once with ``read_episode_record``, so older rollouts' summaries still
score). Keys of ``reward.custom_reward_function.reward_kwargs`` arrive as keyword
arguments and override :class:`RewardSettings`.

For an episode with a valid answer:

1. render ``gen_prompt`` with the first 3 references (store ids the episode
   recorded) through the ``render`` tool of an MCP server, and read the full image
   back through its ``image://`` resource;
2. judge that image against the ground-truth image with the K-Score rubric, and
   the plan (``gen_prompt`` + reference notes) with the text rubric, concurrently;
3. score ``(1 - c) * image + c * text`` with ``c = text_weight`` (0.5).

Episodes without a valid answer score 0 (``invalid="zero"``) or are flagged
``masked`` (``invalid="mask"``). A render or judge failure is retried and then
reported as ``failed = 1`` with the reason in the log (``on_failure="flag"``), or
raised (``on_failure="raise"``). A reward function cannot drop a sample in verl
0.9.1, so masking happens where verl allows it: the ``gen_searcher`` agent loop
calls this function itself (``score_in_loop``) and zeroes the ``response_mask`` of
a failed or (with ``mask_invalid``) answerless episode, and the ``grpo_masked``
advantage estimator (:mod:`verl_recipes.verl_ext.advantage`) leaves such samples out of
their group's mean and std; ``gen-searcher train grpo`` sets this up (a warning
says so when an episode arrives unmasked under ``invalid="mask"``). Called by
verl's reward workers instead, a failure still reads ``failed = 1`` in the metrics
but its score 0 enters GRPO. Judge calls share one client per worker process
(:class:`JudgeRegistry`), which bounds concurrency and applies the rate limit.

Every result carries the same numeric keys (verl stacks them across the batch):
``score, image_score, text_score, valid, invalid, masked, failed, render_s, judge_s``
(``valid``/``invalid``: the episode did / did not end with a valid answer).

The judge's ``judge_rate_limit_per_s`` and ``judge_max_concurrency`` are for the whole
run: every process that scores (the agent-loop workers, with ``score_in_loop``) gets an
equal share, ``1 / judge_workers`` of each (``gen-searcher train grpo`` sets
``judge_workers`` to ``actor_rollout_ref.rollout.agent.num_workers``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import mcp_types
from pydantic import BaseModel, Field, SecretStr, model_validator

from benchmark.judge import JudgeClient, JudgeError
from benchmark.rubrics import judge_kscore, judge_text
from benchmark.settings import JudgeSettings
from gen_searcher_core.episode_record import EpisodeRecord, EpisodeRecordError, read_episode_record
from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.tool_results import RenderResult, parse_output
from policy.mcp_client import DEFAULT_TOKEN_ENV, DEFAULT_URL_ENV, ConnectionPool, McpCallError, McpConnectionError

log = logging.getLogger(__name__)

RENDER_URL_ENV = "GEN_SEARCHER_RENDER_MCP_URL"
#: What verl itself adds to a custom reward function's keyword arguments (with a reward-model router).
VERL_REWARD_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
#: Where the agent loop puts the episode record in ``extra_info``.
EPISODE_KEY = "gen_searcher"
RESULT_KEYS = ("score", "image_score", "text_score", "valid", "invalid", "masked", "failed", "render_s", "judge_s")


class RewardFailure(UserFacingError, RuntimeError):
    """Rendering or judging failed after retries (the episode itself may have been fine)."""


class RewardSettings(BaseModel):
    """Reward settings: ``reward_kwargs`` keys, else ``GEN_SEARCHER_…`` environment variables."""

    render_mcp_url: str | None = Field(
        None, description=f"MCP server with the render tool; default ${RENDER_URL_ENV}, then ${DEFAULT_URL_ENV}"
    )
    token_env: str | None = DEFAULT_TOKEN_ENV
    text_weight: float = Field(0.5, ge=0.0, le=1.0, description="c in (1 - c) * image + c * text")
    invalid: Literal["zero", "mask"] = "zero"
    on_failure: Literal["flag", "raise"] = "flag"
    generator_references: int = Field(3, ge=0)
    render_attempts: int = Field(2, ge=1)
    render_timeout_s: float = 900.0
    render_width: int | None = None
    render_height: int | None = None
    render_steps: int | None = None
    render_seed: int | None = None
    judge_attempts: int = Field(2, ge=1, description="whole-judgement tries (each with the client's own retries)")
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str | None = Field(
        None, description="variable holding the judge's key (default: JudgeSettings')"
    )
    judge_rate_limit_per_s: float | None = Field(
        None, gt=0, description="judge requests per second for the whole run (split among judge_workers)"
    )
    judge_max_concurrency: int | None = Field(
        None, ge=1, description="judge requests in flight for the whole run (split among judge_workers)"
    )
    judge_workers: int | None = Field(
        None, ge=1, description="processes that call the judge (each gets an equal share of the limits); None: 1"
    )

    @model_validator(mode="after")
    def _every_worker_gets_a_share(self) -> RewardSettings:
        """A cap below one request per worker cannot be split: each worker still sends one (cap 4, 8 workers: 8)."""
        workers = self.judge_workers or 1
        if self.judge_max_concurrency is not None and self.judge_max_concurrency < workers:
            raise ValueError(
                f"judge_max_concurrency {self.judge_max_concurrency} is below judge_workers {workers}: every worker "
                "needs at least one judge request in flight; raise the cap or use fewer agent-loop workers "
                "(actor_rollout_ref.rollout.agent.num_workers)"
            )
        return self

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> RewardSettings:
        """Settings from ``reward_kwargs``; an unknown key (a typo) is an error, not silently ignored."""
        unknown = sorted(set(kwargs) - set(cls.model_fields) - VERL_REWARD_KWARGS)
        if unknown:
            raise ValueError(f"unknown reward_kwargs: {', '.join(unknown)} (known: {', '.join(cls.model_fields)})")
        return cls(**{k: v for k, v in kwargs.items() if k in cls.model_fields})

    def render_url(self) -> str:
        url = self.render_mcp_url or os.environ.get(RENDER_URL_ENV) or os.environ.get(DEFAULT_URL_ENV)
        if not url:
            raise RewardFailure(f"no render server: set render_mcp_url, ${RENDER_URL_ENV} or ${DEFAULT_URL_ENV}")
        return url

    def judge_settings(self) -> JudgeSettings:
        overrides: dict[str, Any] = {}
        if self.judge_base_url:
            overrides["base_url"] = self.judge_base_url
        if self.judge_model:
            overrides["model"] = self.judge_model
        workers = self.judge_workers or 1
        if self.judge_rate_limit_per_s is not None:
            overrides["rate_limit_per_s"] = self.judge_rate_limit_per_s / workers
        if self.judge_max_concurrency is not None:
            overrides["max_concurrency"] = self.judge_max_concurrency // workers  # >= 1: checked above
        if self.judge_api_key_env:
            key = os.environ.get(self.judge_api_key_env)
            overrides["api_key"] = SecretStr(key) if key else None
        return JudgeSettings(**overrides)


class JudgeRegistry:
    """The judge clients of one process: one per (event loop, judge settings).

    verl calls :func:`compute_score` as a plain function for every sample, so a
    client made per call would give each call its own rate limit. Every reward call
    of a worker process instead goes through :attr:`shared`, one client per judge,
    so the judge's ``rate_limit_per_s`` and ``max_concurrency`` hold for the whole
    worker. Clients are bound to the event loop they were made on (HTTP pool,
    semaphores), hence one map per loop; loops are held weakly, so a finished
    loop's clients go with it. Tests use :meth:`aclose` or :meth:`reset`, or a
    registry of their own passed to :func:`score_episode`.
    """

    shared: ClassVar[JudgeRegistry]

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str | None], JudgeClient]]
        self._by_loop = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    @staticmethod
    def _key(settings: JudgeSettings) -> tuple[str, str | None]:
        secret = settings.api_key.get_secret_value() if settings.api_key is not None else None
        return settings.model_dump_json(), secret  # the dump masks the key, so it is part of the key apart

    def get(self, settings: JudgeSettings) -> JudgeClient:
        """The client for ``settings`` on the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        with self._guard:
            clients = self._by_loop.setdefault(loop, {})
            key = self._key(settings)
            if key not in clients:
                clients[key] = JudgeClient(settings)
            return clients[key]

    def __len__(self) -> int:
        with self._guard:
            return sum(len(clients) for clients in self._by_loop.values())

    async def aclose(self) -> None:
        """Close and forget the clients of the running event loop."""
        with self._guard:
            clients = self._by_loop.pop(asyncio.get_running_loop(), {})
        for client in clients.values():
            await client.aclose()

    def reset(self) -> None:
        """Forget every client without closing it (between tests whose loops are gone)."""
        with self._guard:
            self._by_loop.clear()


JudgeRegistry.shared = JudgeRegistry()


def _empty(**values: float) -> dict[str, float]:
    out = dict.fromkeys(RESULT_KEYS, 0.0)
    out.update(values)
    return out


def _ground_truth_image(ground_truth: Any) -> Any:
    """What the judge accepts: a path, bytes or data URL (dicts from parquet: ``{"bytes"}`` or ``{"path"}``)."""
    if isinstance(ground_truth, Mapping):
        if ground_truth.get("bytes"):
            return bytes(ground_truth["bytes"])
        ground_truth = ground_truth.get("path") or ground_truth.get("image")
    if isinstance(ground_truth, bytes):
        return ground_truth
    if isinstance(ground_truth, str) and ground_truth:
        if ground_truth.startswith("data:"):
            return ground_truth
        path = Path(ground_truth)
        if not path.is_file():
            raise RewardFailure(f"ground-truth image not found: {path}")
        return path
    raise RewardFailure("the sample has no ground-truth image")


async def render_answer(settings: RewardSettings, gen_prompt: str, reference_ids: Sequence[str]) -> tuple[bytes, str]:
    """Render through the MCP ``render`` tool and read the full image back; returns (bytes, image id)."""
    conn = ConnectionPool.shared.get(
        settings.render_url(), token_env=settings.token_env, timeout_s=settings.render_timeout_s
    )
    arguments: dict[str, Any] = {"prompt": gen_prompt, "reference_image_ids": list(reference_ids)}
    for key in ("width", "height", "steps", "seed"):
        value = getattr(settings, f"render_{key}")
        if value is not None:
            arguments[key] = value
    problem = "no attempt made"
    for attempt in range(settings.render_attempts):
        try:
            result = await conn.call_tool("render", arguments)
            if result.is_error:
                texts = [b.text for b in result.content if isinstance(b, mcp_types.TextContent)]
                raise RewardFailure("render tool error: " + (" ".join(texts) or "no message"))
            rendered = parse_output("render", result.structured_content)  # read through the tool's output model
            if not isinstance(rendered, RenderResult):
                raise RewardFailure("render result has no image id")
            image_id = rendered.id
            resource = await conn.read_resource(f"image://{image_id}")
            for item in resource.contents:
                if isinstance(item, mcp_types.BlobResourceContents):
                    return base64.b64decode(item.blob), image_id
            raise RewardFailure(f"image://{image_id} returned no image")
        except (RewardFailure, McpConnectionError, McpCallError) as exc:
            problem = str(exc)
            log.warning("render attempt %d/%d failed: %s", attempt + 1, settings.render_attempts, problem)
            if attempt + 1 < settings.render_attempts:
                await asyncio.sleep(min(2.0**attempt, 10.0))
    raise RewardFailure(f"render failed after {settings.render_attempts} attempts: {problem}")


async def _judged(what: str, attempts: int, make: Any) -> Any:
    problem = "no attempt made"
    for attempt in range(attempts):
        try:
            return await make()
        except JudgeError as exc:
            problem = str(exc)
            log.warning("%s judge attempt %d/%d failed: %s", what, attempt + 1, attempts, problem)
    raise RewardFailure(f"{what} judge failed after {attempts} attempts: {problem}")


async def score_episode(
    settings: RewardSettings,
    episode: EpisodeRecord,
    ground_truth: Any,
    *,
    judges: JudgeRegistry | None = None,
) -> dict[str, float]:
    """Render + judge one valid episode; raises :class:`RewardFailure`.

    The judge client comes from ``judges`` (default: the process-wide :attr:`JudgeRegistry.shared`).
    """
    answer = episode.answer
    if answer is None:
        raise RewardFailure("the episode has no valid answer to score")
    gen_prompt = answer.gen_prompt
    prompt = episode.prompt
    references = list(answer.generator_image_ids)[: settings.generator_references]
    notes = [ref.note for ref in answer.references]
    truth = await asyncio.to_thread(_ground_truth_image, ground_truth)  # a file check: off the event loop
    judge = (judges if judges is not None else JudgeRegistry.shared).get(settings.judge_settings())

    async def image_part() -> tuple[float, float, float]:
        started = time.perf_counter()
        image, _ = await render_answer(settings, gen_prompt, references)
        rendered = time.perf_counter()
        judgement = await _judged(
            "K-Score",
            settings.judge_attempts,
            lambda: judge_kscore(judge, prompt=prompt or gen_prompt, image=image, gt_image=truth),
        )
        return judgement.score, rendered - started, time.perf_counter() - rendered

    async def text_part() -> float:
        judgement = await _judged(
            "text",
            settings.judge_attempts,
            lambda: judge_text(
                judge, gen_prompt=gen_prompt, reference_notes=notes, gt_image=truth, original_prompt=prompt or None
            ),
        )
        return float(judgement.score)

    (image_score, render_s, judge_s), text_score = await asyncio.gather(image_part(), text_part())
    c = settings.text_weight
    return _empty(
        score=(1.0 - c) * image_score + c * text_score,
        image_score=image_score,
        text_score=text_score,
        valid=1.0,
        render_s=render_s,
        judge_s=judge_s,
    )


def _episode_of(info: Mapping[str, Any]) -> EpisodeRecord | None:
    """The episode record under ``extra_info["gen_searcher"]`` (any version the reader knows); None when absent."""
    episode = info.get(EPISODE_KEY)
    if episode is None:
        return None
    if not isinstance(episode, (EpisodeRecord, Mapping)):
        raise EpisodeRecordError(f"extra_info[{EPISODE_KEY!r}] is a {type(episode).__name__}, not an episode record")
    return read_episode_record(episode)


async def compute_score(
    data_source: str | None = None,
    solution_str: str | None = None,
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's custom reward entry point (async). Returns ``{"score": …, …}`` with the keys of ``RESULT_KEYS``."""
    settings = RewardSettings.from_kwargs(kwargs)
    info = dict(extra_info or {})
    sample = info.get("id") or info.get("index")
    try:
        episode = _episode_of(info)
    except EpisodeRecordError as exc:
        log.error("reward sample=%s FAILED (unreadable episode record, not scored as a bad answer): %s", sample, exc)
        if settings.on_failure == "raise":
            raise RewardFailure(f"unreadable episode record: {exc}") from None
        return _empty(failed=1.0, valid=1.0)
    if episode is None or not episode.valid:
        termination = episode.termination if episode is not None else "no episode"
        log.info("reward sample=%s termination=%s: no valid answer (%s)", sample, termination, settings.invalid)
        if settings.invalid == "mask" and episode is not None and not episode.loss_masked:
            warnings.warn(  # shown once per process: a configuration problem, not a per-sample one
                "reward_kwargs.invalid=mask, but the agent loop kept this episode's loss: set mask_invalid: true in "
                "the agent-loop config and algorithm.adv_estimator=grpo_masked (gen-searcher train grpo "
                "--invalid mask sets both)",
                RuntimeWarning,
                stacklevel=1,
            )
        return _empty(invalid=1.0, masked=1.0 if settings.invalid == "mask" else 0.0)
    try:
        result = await score_episode(settings, episode, ground_truth)
    except RewardFailure as exc:
        log.error("reward sample=%s FAILED (not scored as a bad answer): %s", sample, exc)
        if settings.on_failure == "raise":
            raise
        return _empty(failed=1.0, valid=1.0)
    log.info(
        "reward sample=%s image=%.3f text=%.3f score=%.3f render=%.1fs judge=%.1fs",
        sample,
        result["image_score"],
        result["text_score"],
        result["score"],
        result["render_s"],
        result["judge_s"],
    )
    return result
