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

The episode's outcome is returned in ``extra_fields["gen_searcher"]`` (termination,
answer, the generator's store ids) for :mod:`verl_recipes.reward`.

Settings come from the agent-loop YAML (``actor_rollout_ref.rollout.agent.agent_loop_config_path``;
extra keys there are passed to the constructor), else from the environment; see
:class:`LoopSettings`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
from verl.utils.profiler import simple_timer

from policy.chat import Sampling
from policy.episode import Continue, Episode, EpisodeConfig, Finished, RunTools, Termination, ToolResult
from policy.mcp_tools import convert_result
from policy.protocol import ToolCall
from verl_recipes.mcp_convert import decode_image
from verl_recipes.mcp_session import DEFAULT_TOKEN_ENV, DEFAULT_URL_ENV, ConnectionPool, McpCallError, McpConnectionError

log = logging.getLogger(__name__)

AGENT_NAME = "gen_searcher"
EXTRA_KEY = "gen_searcher"
_CUT_MARKER = "<tool_response>"
_END_TOKENS = ("<|im_end|>", "<|endoftext|>")


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
    mask_invalid: bool = Field(False, description="zero the loss mask of episodes that end without a valid answer")

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
        return extra_info["prompt"]
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
        return {"role": message["role"], "content": content}, []
    if not any(part["type"] == "image" for part in content):
        return {"role": message["role"], "content": "".join(part["text"] for part in content)}, []
    parts: list[dict[str, Any]] = []
    images: list[Any] = []
    for part in content:
        if part["type"] == "image":
            image = decode_image(part["data"], part.get("mime_type"))
            parts.append({"type": "image", "image": image})
            images.append(image)
        else:
            parts.append({"type": "text", "text": part["text"]})
    return {"role": message["role"], "content": parts}, images


@register(AGENT_NAME)
class GenSearcherAgentLoop(AgentLoopBase):
    """Runs one Gen-Searcher episode per sample with verl's token-in/token-out generation."""

    def __init__(self, *args: Any, tools: Any = None, **kwargs: Any) -> None:
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in LoopSettings.model_fields}
        super().__init__(*args, **kwargs)
        self.settings = LoopSettings(**own)
        self.response_length = self.rollout_config.response_length
        self._end_ids = self._end_token_ids()

    def _end_token_ids(self) -> set[int]:
        ids: set[int] = set()
        for token in _END_TOKENS:
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id >= 0 and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _turn_end_id(self) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(token_id, int) and token_id >= 0 and token_id != self.tokenizer.unk_token_id:
            return token_id
        return int(self.tokenizer.eos_token_id)

    # -- tools -----------------------------------------------------------------

    async def _run_tools(self, calls: tuple[ToolCall, ...]) -> list[ToolResult]:
        conn = ConnectionPool.shared.get(
            self.settings.server_url(), token_env=self.settings.token_env, timeout_s=self.settings.tool_timeout_s
        )

        async def one(call: ToolCall) -> ToolResult:
            try:
                return convert_result(call.name, await conn.call_tool(call.name, call.arguments))
            except McpCallError as exc:  # the server rejected the arguments: the model sees why
                return ToolResult.error(call.name, str(exc))

        return list(await asyncio.gather(*(one(c) for c in calls)))

    # -- tokens ----------------------------------------------------------------

    def _kept_length(self, token_ids: list[int], text: str) -> int:
        """How many leading tokens decode to text before the first hallucinated ``<tool_response>``."""
        cut_at = text.find(_CUT_MARKER)
        if cut_at < 0:
            return len(token_ids)
        lo, hi = 0, len(token_ids)  # largest n with len(decode(ids[:n])) <= cut_at
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self.tokenizer.decode(token_ids[:mid], skip_special_tokens=True)) <= cut_at:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # -- the episode -------------------------------------------------------------

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        extra_info = kwargs.get("extra_info") or {}
        episode = Episode(task_prompt(kwargs.get("raw_prompt"), extra_info), self.settings.episode_config())
        metrics: dict[str, Any] = {}
        request_id = uuid4().hex
        mm_kwargs = self._get_mm_processor_kwargs()

        chat: list[dict[str, Any]] = []
        images: list[Any] = []
        for message in episode.messages:
            converted, found = chat_message(message)
            chat.append(converted)
            images.extend(found)
        self._assert_mm_supported(bool(images))
        prompt_ids = await self.ct_build_initial_tokens(chat, images=images or None)
        prompt_length = len(prompt_ids)
        tokens = list(prompt_ids)
        mask: list[int] = []
        logprobs: list[float] = []
        want_logprobs = bool(sampling_params.get("logprobs"))
        params = dict(sampling_params)
        if self.settings.max_turn_tokens:
            params["max_tokens"] = self.settings.max_turn_tokens
        turn_end = self._turn_end_id()

        while not episode.done:
            budget = self.response_length - len(mask)
            if budget <= 0:
                episode.fail("the rollout response_length budget is used up")
                break
            turn_params = dict(params)
            turn_params["max_tokens"] = min(int(params.get("max_tokens", budget)), budget)
            with simple_timer("generate_sequences", metrics):
                output = await self.server_manager.generate(
                    request_id=request_id,
                    prompt_ids=tokens,
                    sampling_params=turn_params,
                    image_data=images or None,
                    video_data=None,
                    mm_processor_kwargs=mm_kwargs,
                )
            if output.stop_reason == "aborted":
                episode.fail("generation was aborted")
                break
            generated = list(output.token_ids)
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            truncated = not generated or generated[-1] not in self._end_ids
            keep = self._kept_length(generated, text)
            kept_logprobs = list(output.log_probs[:keep]) if (want_logprobs and output.log_probs) else None
            merged, mask, lp = await self.ct_merge_assistant_token(
                tokens, generated[:keep], mask, logprobs if kept_logprobs is not None else None,
                assistant_logprobs=kept_logprobs,
            )
            tokens = merged.token_ids
            if lp is not None:
                logprobs = lp
            if not tokens or tokens[-1] not in self._end_ids:  # close the turn (not model-written: no loss)
                tokens = tokens + [turn_end]
                mask = mask + [0]
                if logprobs:
                    logprobs = logprobs + [0.0]

            seen = len(episode.messages)
            action = episode.on_model_output(text, truncated)
            chat.append({"role": "assistant", "content": episode.messages[seen]["content"]})
            if isinstance(action, Finished):
                break
            if isinstance(action, RunTools):
                with simple_timer("tool_calls", metrics):
                    try:
                        results = await self._run_tools(action.calls)
                    except McpConnectionError as exc:
                        episode.fail(f"tool session failed: {exc}")
                        break
                message = episode.on_tool_results(results)
            else:
                assert isinstance(action, Continue)
                message = action.message
            converted, new_images = chat_message(message)
            self._assert_mm_supported(bool(new_images))
            previous = list(chat)
            chat.append(converted)
            merged, new_mask, new_lp = await self.ct_merge_context_msg(
                previous, chat, tokens, mask, logprobs if logprobs else None
            )
            if len(new_mask) >= self.response_length:
                episode.fail("the rollout response_length budget is used up")
                break
            tokens, mask = merged.token_ids, new_mask
            if logprobs:
                logprobs = new_lp or []
            images.extend(new_images)

        result = episode.result
        assert result is not None
        summary = result.to_dict()
        summary["answer"] = result.answer.to_dict() if result.answer else None
        summary["valid"] = result.ok
        summary["prompt"] = episode.prompt
        summary["image_count"] = len(images)
        log.debug("episode ended: %s after %d model calls", summary["termination"], summary["model_calls"])
        if self.settings.mask_invalid and not result.ok:
            mask = [0] * len(mask)
        response_ids = tokens[prompt_length:]
        return AgentLoopOutput(
            prompt_ids=tokens[:prompt_length],
            response_ids=response_ids[: self.response_length],
            response_mask=mask[: self.response_length],
            response_logprobs=logprobs[: self.response_length] if logprobs else None,
            multi_modal_data={"images": images} if images else {},
            mm_processor_kwargs=mm_kwargs,
            num_turns=len(chat) - 1,
            metrics=metrics,
            extra_fields={EXTRA_KEY: summary},
        )


def termination_counts(summaries: list[dict[str, Any]]) -> dict[str, int]:
    """How many episodes ended each way (for logs and tests)."""
    counts = {str(t): 0 for t in Termination}
    for summary in summaries:
        counts[summary["termination"]] = counts.get(summary["termination"], 0) + 1
    return counts
