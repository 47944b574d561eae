"""The ``gen_searcher`` verl agent loop: the policy's episode state machine on verl's token generation.

Training and inference run the same :class:`policy.episode.Episode`: same system
prompt, parsing, image ids, limits and termination reasons. Only the driver
differs: here each model turn is generated token-in/token-out by verl's rollout
server (``server_manager.generate``), the context is kept as tokens with verl's
Continuous Token builder (so a turn is never re-tokenized), tool calls go through
this worker's MCP session, and tool-response tokens carry ``response_mask = 0``
(no loss on what the model did not write).

Where the episode cleans a turn (text after a hallucinated ``<tool_response>`` is
cut) the token stream is cut at the same place and the turn closed with an
end-of-turn token that is masked out, so the context the model sees next matches
inference. A turn that hits the token limit is closed the same way.

The episode's outcome is returned in ``extra_fields["gen_searcher"]`` as the JSON dump
of a :class:`~gen_searcher_core.episode_record.EpisodeRecord` (termination, answer, the
generator's store ids, counters; no turns) for :mod:`verl_recipes.reward`. With
``score_in_loop`` (what ``gen-searcher train grpo`` sets) the loop calls that reward
itself and returns ``reward_score``, which verl then uses instead of its reward
workers: an episode whose render or judgement failed gets a zero loss mask, so the
``grpo_masked`` estimator leaves it out rather than training on a score of 0.

Settings come from the agent-loop YAML (``actor_rollout_ref.rollout.agent.agent_loop_config_path``;
extra keys there are passed to the constructor), else from the environment; see
:class:`LoopSettings`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import uuid4

from pydantic import BaseModel, Field
from verl.experimental.agent_loop import agent_loop as verl_agent_loop
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput
from verl.utils.profiler import simple_timer

from gen_searcher_core.episode_record import EpisodeRecord, Termination
from policy.chat import Sampling
from policy.episode import Continue, Episode, EpisodeConfig, Finished, RunTools, ToolResult
from policy.mcp_client import DEFAULT_TOKEN_ENV, DEFAULT_URL_ENV, ConnectionPool, McpConnectionError
from policy.mcp_tools import McpTools
from policy.protocol import ToolCall
from verl_recipes.mcp_convert import decode_image
from verl_recipes.verl_ext.dropped_episodes import report_dropped_episode

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

AGENT_NAME = "gen_searcher"
EXTRA_KEY = "gen_searcher"
_CUT_MARKER = "<tool_response>"
_END_TOKENS = ("<|im_end|>", "<|endoftext|>")
#: Placeholders the processor expands into image features; only the chat template may place them.
_VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")


def plain_text(text: str) -> str:
    """``text`` with vision placeholders defused (``<|image_pad|>`` -> ``<image_pad>``).

    A page or prompt that contains a placeholder's text would otherwise be tokenized as
    the placeholder itself, and verl's postprocess would find more image tokens than images.
    """
    for token in _VISION_TOKENS:
        if token in text:
            text = text.replace(token, token.replace("|", ""))
    return text


class LoopSettings(BaseModel):
    """Settings of the ``gen_searcher`` loop (keys of the agent-loop YAML entry)."""

    tool_server_url: str | None = Field(None, description=f"MCP tool server; default ${DEFAULT_URL_ENV}")
    token_env: str | None = DEFAULT_TOKEN_ENV
    tool_timeout_s: float = 300.0
    max_calls: int = 9
    parallel_tool_calls: bool = False
    max_parallel_calls: int = 5
    tool_text_budget: int = 8000
    max_turn_tokens: int | None = Field(
        Sampling.max_tokens, description="tokens per model turn (the inference driver's default); None: the budget left"
    )
    system_prompt_file: str | None = None
    mask_invalid: bool = Field(
        False, description="zero the loss mask of episodes without a valid answer (grpo_masked then skips them)"
    )
    score_in_loop: bool = Field(
        False,
        description="compute the reward at the end of the episode (reward_kwargs from the trainer config), so that "
        "a failed render or judgement is masked instead of scored 0 by verl",
    )

    def episode_config(self) -> EpisodeConfig:
        system_prompt = Path(self.system_prompt_file).read_text(encoding="utf-8") if self.system_prompt_file else None
        return EpisodeConfig(
            max_calls=self.max_calls,
            parallel_tool_calls=self.parallel_tool_calls,
            max_parallel_calls=self.max_parallel_calls,
            tool_text_budget=self.tool_text_budget,
            system_prompt=system_prompt,
        )

    def server_url(self) -> str:
        url = self.tool_server_url or os.environ.get(DEFAULT_URL_ENV)
        if not url:
            raise ValueError(f"the gen_searcher loop needs tool_server_url or ${DEFAULT_URL_ENV}")
        return url


def task_prompt(raw_prompt: Any, extra_info: dict[str, Any] | None) -> str:
    """The image request: ``extra_info["prompt"]`` (what the RL converter stores), else the last user text."""
    if extra_info and isinstance(extra_info.get("prompt"), str) and extra_info["prompt"].strip():
        return str(extra_info["prompt"])
    for message in reversed(list(raw_prompt or [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ValueError("the sample has no task prompt (extra_info.prompt or a user message)")


def chat_message(message: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """An episode message as a chat-template message (PIL images inline) plus its images, in order."""
    content = message["content"]
    if isinstance(content, str):
        return {"role": message["role"], "content": plain_text(content)}, []
    if not any(part["type"] == "image" for part in content):
        return {"role": message["role"], "content": plain_text("".join(part["text"] for part in content))}, []
    parts: list[dict[str, Any]] = []
    images: list[Any] = []
    for part in content:
        if part["type"] == "image":
            image = decode_image(part["data"], part.get("mime_type"))
            parts.append({"type": "image", "image": image})
            images.append(image)
        else:
            parts.append({"type": "text", "text": plain_text(part["text"])})
    return {"role": message["role"], "content": parts}, images


class GenSearcherAgentLoop(AgentLoopBase):
    """Runs one Gen-Searcher episode per sample with verl's token-in/token-out generation."""

    def __init__(self, *args: Any, tools: Any = None, **kwargs: Any) -> None:
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in LoopSettings.model_fields}
        super().__init__(*args, **kwargs)
        self.settings = LoopSettings(**own)
        self.response_length = self.rollout_config.response_length
        self._end_ids = self._end_token_ids()
        self._turn_end = self._turn_end_id()
        self._vision_ids = self._token_ids(_VISION_TOKENS)

    @property
    def text_tokenizer(self) -> PreTrainedTokenizerBase:
        """verl's tokenizer instance (verl annotates it as the ``AutoTokenizer`` class)."""
        return cast("PreTrainedTokenizerBase", self.tokenizer)

    def _decode(self, token_ids: list[int]) -> str:
        text = self.text_tokenizer.decode(token_ids, skip_special_tokens=True)
        if not isinstance(text, str):  # a list only comes back for a batch of sequences
            raise TypeError(f"the tokenizer decoded one sequence to {type(text).__name__}")
        return text

    def _token_ids(self, tokens: tuple[str, ...]) -> set[int]:
        """The ids of those of ``tokens`` the tokenizer knows."""
        ids: set[int] = set()
        for token in tokens:
            token_id = self.text_tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id >= 0 and token_id != self.text_tokenizer.unk_token_id:
                ids.add(token_id)
        return ids

    def _end_token_ids(self) -> set[int]:
        ids = self._token_ids(_END_TOKENS)
        if self.text_tokenizer.eos_token_id is not None:
            ids.add(self.text_tokenizer.eos_token_id)
        return ids

    def _turn_end_id(self) -> int:
        token_id = self.text_tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(token_id, int) and token_id >= 0 and token_id != self.text_tokenizer.unk_token_id:
            return token_id
        return int(self.text_tokenizer.eos_token_id)

    # -- tools -----------------------------------------------------------------

    async def _run_tools(self, calls: tuple[ToolCall, ...]) -> list[ToolResult]:
        """The calls' results in call order, as the inference driver gets them (errors are results the model sees)."""
        conn = ConnectionPool.shared.get(
            self.settings.server_url(), token_env=self.settings.token_env, timeout_s=self.settings.tool_timeout_s
        )
        return await McpTools(conn).call_many(calls, parallel=self.settings.parallel_tool_calls)

    # -- tokens ----------------------------------------------------------------

    def _kept_length(self, token_ids: list[int], text: str) -> int:
        """How many leading tokens decode to text before the first hallucinated ``<tool_response>``."""
        cut_at = text.find(_CUT_MARKER)
        if cut_at < 0:
            return len(token_ids)
        lo, hi = 0, len(token_ids)  # largest n with len(decode(ids[:n])) <= cut_at
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self._decode(token_ids[:mid])) <= cut_at:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- the episode -------------------------------------------------------------

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        try:
            return await self._run_episode(sampling_params, **kwargs)
        except Exception as exc:
            # verl drops an episode that raises; the trainer counts and fails on it (verl_ext.dropped_episodes)
            await report_dropped_episode(exc)
            raise

    async def _run_episode(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        episode_config = await asyncio.to_thread(self.settings.episode_config)  # may read the system prompt file
        episode = Episode(task_prompt(kwargs.get("raw_prompt"), kwargs.get("extra_info") or {}), episode_config)
        turn = _Turn(
            request_id=uuid4().hex,
            params=self._turn_params(sampling_params),
            want_logprobs=bool(sampling_params.get("logprobs")),
            mm_kwargs=self._get_mm_processor_kwargs(),
        )
        context = await self._start(episode)
        while not episode.done:
            if self.response_length - len(context.mask) <= 0:
                episode.fail("the rollout response_length budget is used up")
                break
            generated = await self._model_turn(context, turn)
            if generated is None:
                episode.fail("generation was aborted")
                break
            seen = len(episode.messages)
            action = episode.on_model_output(*generated)
            context.chat.append({"role": "assistant", "content": episode.messages[seen]["content"]})
            if isinstance(action, Finished):
                break
            message = await self._reply(episode, action, turn.metrics)
            if message is None:
                break
            if not await self._add_message(context, message):
                episode.fail("the rollout response_length budget is used up")
                break
        record = self._record(episode, context)
        reward = await self._score(record, kwargs) if self.settings.score_in_loop else None
        if reward is not None and reward["failed"]:
            # a failed render or judgement teaches nothing (and leaves the group)
            record = record.model_copy(update={"loss_masked": True})
        return self._output(record, context, turn, reward)

    def _turn_params(self, sampling_params: dict[str, Any]) -> dict[str, Any]:
        params = dict(sampling_params)
        if self.settings.max_turn_tokens:
            params["max_tokens"] = self.settings.max_turn_tokens
        return params

    async def _start(self, episode: Episode) -> _Context:
        """The episode's opening messages as prompt tokens."""
        chat: list[dict[str, Any]] = []
        images: list[Any] = []
        for message in episode.messages:
            converted, found = chat_message(message)
            chat.append(converted)
            images.extend(found)
        self._assert_mm_supported(bool(images))
        if images:
            prompt_ids = await self.ct_build_initial_tokens(chat, images=images)
        else:
            prompt_ids = await self.ct_build_initial_tokens(chat)
        return _Context(tokens=list(prompt_ids), prompt_length=len(prompt_ids), chat=chat, images=images)

    async def _model_turn(self, context: _Context, turn: _Turn) -> tuple[str, bool] | None:
        """Generate one model turn into ``context``; returns (text, truncated), or None if generation was aborted.

        Tokens after a hallucinated ``<tool_response>`` are dropped (the episode cuts the text there),
        and a turn that does not end with an end-of-turn token is closed by one that carries no loss.
        """
        budget = self.response_length - len(context.mask)
        params = dict(turn.params)
        params["max_tokens"] = min(int(turn.params.get("max_tokens", budget)), budget)
        with simple_timer("generate_sequences", turn.metrics):
            output = await self.server_manager.generate(
                request_id=turn.request_id,
                prompt_ids=context.tokens,
                sampling_params=params,
                image_data=context.images or None,
                video_data=None,
                mm_processor_kwargs=turn.mm_kwargs,
            )
        if output.stop_reason == "aborted":
            return None
        context.record_server_fields(output.extra_fields)
        generated = list(output.token_ids)
        # A vision placeholder the model wrote would claim image features no image has
        # (verl's postprocess then fails): the turn ends before it, like a cut hallucination.
        vision_at = next((i for i, token in enumerate(generated) if token in self._vision_ids), None)
        if vision_at is not None:
            generated = generated[:vision_at]
        text = self._decode(generated)
        truncated = vision_at is None and (not generated or generated[-1] not in self._end_ids)
        keep = self._kept_length(generated, text)
        kept_logprobs = list(output.log_probs[:keep]) if (turn.want_logprobs and output.log_probs) else None
        merged, context.mask, lp = await self.ct_merge_assistant_token(
            context.tokens,
            generated[:keep],
            context.mask,
            context.logprobs if kept_logprobs is not None else None,
            assistant_logprobs=kept_logprobs,
        )
        context.tokens = merged.token_ids
        if lp is not None:
            context.logprobs = lp
        if not context.tokens or context.tokens[-1] not in self._end_ids:
            context.tokens = [*context.tokens, self._turn_end]
            context.mask = [*context.mask, 0]
            if context.logprobs:
                context.logprobs = [*context.logprobs, 0.0]
        return text, truncated

    async def _reply(self, episode: Episode, action: Any, metrics: dict[str, Any]) -> dict[str, Any] | None:
        """The next user message: tool results or the episode's notice; None when the tool session failed."""
        if isinstance(action, RunTools):
            with simple_timer("tool_calls", metrics):
                try:
                    results = await self._run_tools(action.calls)
                except McpConnectionError as exc:
                    episode.fail(f"tool session failed: {exc}")
                    return None
            return episode.on_tool_results(results)
        assert isinstance(action, Continue)
        return action.message

    async def _add_message(self, context: _Context, message: dict[str, Any]) -> bool:
        """Append a user message (no loss on its tokens); False when it does not fit the response budget."""
        converted, new_images = chat_message(message)
        self._assert_mm_supported(bool(new_images))
        previous = list(context.chat)
        context.chat.append(converted)
        merged, new_mask, new_lp = await self.ct_merge_context_msg(
            previous, context.chat, context.tokens, context.mask, context.logprobs if context.logprobs else None
        )
        if len(new_mask) >= self.response_length:
            return False
        context.tokens, context.mask = merged.token_ids, new_mask
        if context.logprobs:
            context.logprobs = new_lp or []
        context.images.extend(new_images)
        return True

    def _record(self, episode: Episode, context: _Context) -> EpisodeRecord:
        """The episode's outcome, no turns (verl keeps the tokens): ``extra_fields["gen_searcher"]``."""
        record = episode.record(
            image_count=len(context.images),
            loss_masked=self.settings.mask_invalid and episode.result is not None and not episode.result.ok,
        )
        log.debug("episode ended: %s after %d model calls", record.termination, record.model_calls)
        return record

    async def _score(self, record: EpisodeRecord, sample: dict[str, Any]) -> dict[str, float]:
        """The dual reward, computed here rather than by verl's reward workers (``score_in_loop``).

        verl gives a reward function no way to drop a sample, but it takes an agent loop's own
        ``reward_score``; scoring here lets a failed render or judgement zero the episode's loss
        mask, which ``grpo_masked`` then leaves out of the group. The settings are the same
        ``reward.custom_reward_function.reward_kwargs`` verl would pass to the function.
        """
        from omegaconf import DictConfig, OmegaConf

        from verl_recipes.reward import compute_score

        configured = self.config.reward.custom_reward_function.get("reward_kwargs") or {}
        if isinstance(configured, DictConfig):
            configured = OmegaConf.to_container(configured, resolve=True)
        if not isinstance(configured, dict):
            raise TypeError(f"reward.custom_reward_function.reward_kwargs must be a mapping, not {configured!r}")
        reward_model = sample.get("reward_model") or {}
        extra_info = {**(sample.get("extra_info") or {}), EXTRA_KEY: record}
        return await compute_score(
            sample.get("data_source"), "", reward_model.get("ground_truth"), extra_info, **configured
        )

    def _output(
        self, record: EpisodeRecord, context: _Context, turn: _Turn, reward: dict[str, float] | None
    ) -> AgentLoopOutput:
        mask = context.mask
        if record.loss_masked:
            mask = [0] * len(
                mask
            )  # no loss; grpo_masked also leaves it out of the group (verl_recipes.verl_ext.advantage)
        # The record's JSON dump: plain data that survives verl's batching and pickling between processes.
        extra_fields: dict[str, Any] = {**context.server_fields, EXTRA_KEY: record.model_dump(mode="json")}
        if reward is not None:
            extra_fields["reward_extra_info"] = reward  # where verl's own reward step would put it
        limit = self.response_length
        return AgentLoopOutput(
            prompt_ids=context.tokens[: context.prompt_length],
            response_ids=context.tokens[context.prompt_length :][:limit],
            response_mask=mask[:limit],
            response_logprobs=context.logprobs[:limit] if context.logprobs else None,
            multi_modal_data={"images": context.images} if context.images else {},
            mm_processor_kwargs=turn.mm_kwargs,
            num_turns=len(context.chat) - 1,
            metrics=turn.metrics,
            reward_score=reward["score"] if reward is not None else None,
            extra_fields=extra_fields,
        )


def register_default() -> None:
    """Register ``gen_searcher`` with default settings unless an agent-loop YAML registered it first.

    verl's ``AgentLoopWorker`` loads the launcher's ``agent_loops.yaml`` (the loop's settings)
    into its registry, and the first episode's ``hydra.utils.instantiate`` imports this module.
    verl's ``@register`` would then replace that entry with a bare one, and every later episode
    of the worker would lose its settings; registering only where nothing is yet keeps them.
    """
    verl_agent_loop._agent_loop_registry.setdefault(AGENT_NAME, {"_target_": f"{__name__}.GenSearcherAgentLoop"})


register_default()


@dataclass
class _Context:
    """One episode's token context as it grows: prompt + response tokens, loss mask, logprobs, chat, images."""

    tokens: list[int]
    prompt_length: int
    chat: list[dict[str, Any]]
    images: list[Any]
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    #: What the rollout server reported about the weights it generated with (verl's v1 trainer
    #: reads ``min_global_steps``/``max_global_steps`` of every sample): the first turn's fields,
    #: with the newest ``max_global_steps`` of later turns.
    server_fields: dict[str, Any] = field(default_factory=dict)

    def record_server_fields(self, fields: dict[str, Any]) -> None:
        if not self.server_fields:
            self.server_fields = dict(fields)
        elif fields.get("max_global_steps") is not None:
            self.server_fields["max_global_steps"] = fields["max_global_steps"]


@dataclass
class _Turn:
    """What every generation request of one episode shares."""

    request_id: str
    params: dict[str, Any]
    want_logprobs: bool
    mm_kwargs: dict[str, Any] | None
    metrics: dict[str, Any] = field(default_factory=dict)


def termination_counts(records: Iterable[EpisodeRecord]) -> dict[str, int]:
    """How many episodes ended each way (for logs and tests)."""
    counts = {str(t): 0 for t in Termination}
    for record in records:
        counts[str(record.termination)] += 1
    return counts
