"""A baseline policy that needs no model: image-search the prompt, keep the top image.

It plays the model's part in an ordinary :class:`~policy.episode.Episode`, so
its result and trace have exactly the shape of a real policy run and benchmarks
can compare the two directly. ``gen_prompt`` is the request itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from policy.chat import ChatModelError, ChatReply
from policy.driver import EpisodeRun, ProgressFn, ToolRunner, run_episode
from policy.episode import EpisodeConfig, message_text
from policy.protocol import ToolCall, format_tool_calls

MAX_QUERY_CHARS = 256


class BaselineModel:
    """Answers episode messages deterministically: one image search, then the first image found."""

    name = "baseline"

    def __init__(self, top_k: int = 5) -> None:
        self.top_k = top_k

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply:
        prompt = message_text(messages[1]).strip()
        if not any(m["role"] == "assistant" for m in messages):
            call = ToolCall("image_search", {"query": prompt[:MAX_QUERY_CHARS], "top_k": self.top_k})
            return ChatReply(
                text=f"<think>Find a picture of the request.</think>\n{format_tool_calls([call])}", truncated=False
            )
        last = messages[-1]
        content = last["content"] if isinstance(last["content"], list) else []
        img_ids = [part["img_id"] for part in content if part.get("type") == "image"]
        if not img_ids:
            # The tool's own words (a network error, say) are the useful part: keep them in the message.
            said = " ".join(message_text(last).replace("<tool_response>", "").replace("</tool_response>", "").split())
            said = said[:400]
            raise ChatModelError(
                "baseline: image search found no image for the prompt"
                + (f" (image_search said: {said})" if said else "")
            )
        answer = {"gen_prompt": prompt, "reference_images": [{"img_id": img_ids[0], "note": "top image search result"}]}
        return ChatReply(
            text=f"<think>Use the top result.</think>\n<answer>{json.dumps(answer, ensure_ascii=False)}</answer>",
            truncated=False,
        )


async def run_baseline(
    prompt: str,
    tools: ToolRunner,
    config: EpisodeConfig | None = None,
    *,
    top_k: int = 5,
    progress: ProgressFn | None = None,
) -> EpisodeRun:
    """Run the baseline policy as an episode (same result type and trace as a model run)."""
    return await run_episode(prompt, BaselineModel(top_k), tools, config, progress=progress, model_name="baseline")
