"""Real episode traces for the page tests: the policy's driver with a scripted model and scripted tools.

The driver, the episode state machine and the trace are the production code; only the
model's replies and the tools' results are scripted, so the traces have exactly the
shape ``gen-searcher run`` writes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from policy.chat import ChatReply
from policy.driver import EpisodeRun, run_episode
from policy.episode import ToolImage, ToolResult
from policy.protocol import ToolCall
from tests.policy.conftest import png

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & "quotes"'


def png_b64(colour: tuple[int, int, int]) -> str:
    return base64.b64encode(png(colour, (96, 72))).decode()


def _call(name: str, think: str, **arguments: Any) -> str:
    return f"<think>{think}</think>\n<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def _answer(prompt: str, *ids: str) -> str:
    refs = [{"img_id": i, "note": f"shows {i} {HOSTILE}"} for i in ids]
    body = json.dumps({"gen_prompt": prompt, "reference_images": refs})
    return f"<think>I have enough.</think>\n<answer>{body}</answer>"


class ScriptedModel:
    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply:
        return ChatReply(
            text=self.replies.pop(0),
            truncated=False,
            finish_reason="stop",
            usage={"prompt_tokens": 100, "completion_tokens": 20},
        )


class ScriptedTools:
    """search, browse and image_search results in the tool server's shapes; a failing browse of /broken."""

    async def call(self, call: ToolCall) -> ToolResult:
        if call.name == "search":
            results = [
                {
                    "query": q,
                    "hits": [
                        {
                            "title": f"{q} {HOSTILE}",
                            "url": "https://example.org/a",
                            "snippet": "A page.",
                            "position": 1,
                        },
                        {"title": "javascript link", "url": "javascript:alert(1)", "snippet": "", "position": 2},
                    ],
                    "error": None,
                }
                for q in call.arguments["queries"]
            ]
            return ToolResult(name="search", text="hits", structured={"results": results})
        if call.name == "browse":
            if "broken" in call.arguments["url"]:
                return ToolResult.error("browse", "browse failed: HTTP 404 from example.org")
            structured = {
                "url": call.arguments["url"],
                "title": f"Page {HOSTILE}",
                "offset": 0,
                "total_chars": 900,
                "content": f"The bridge is copper green. {HOSTILE}",
                "summarized": True,
                "next_offset": 900,
            }
            return ToolResult(name="browse", text=structured["content"], structured=structured)
        colours = [(40, 160, 120), (200, 40, 50), (240, 180, 40)]
        images = tuple(
            ToolImage(
                data=png_b64(colour),
                mime_type="image/png",
                store_id=f"img_{n:016x}",
                title=f"Photo {n} {HOSTILE}",
                page_url=f"https://example.org/p{n}",
                width=320,
                height=240,
            )
            for n, colour in enumerate(colours, start=1)
        )
        return ToolResult(name="image_search", text="3 images", structured={"query": "q"}, images=images)


async def scripted_run(prompt: str = f"The Quorvath Bridge {HOSTILE}") -> EpisodeRun:
    """An answered episode: search, a format error, browse, a failed browse, image search, answer."""
    model = ScriptedModel(
        [
            _call("search", f"Search first. {HOSTILE}", queries=["Quorvath Bridge"]),
            "I will just answer without tags.",
            _call("browse", "Read the page.", url="https://example.org/a", goal="colour"),
            _call("browse", "Another page.", url="https://example.org/broken", goal="colour"),
            _call("image_search", "Find photos.", query="Quorvath Bridge", top_k=3),
            _answer(f"A copper-green bridge like the first reference image. {HOSTILE}", "IMG_001", "IMG_003"),
        ]
    )
    return await run_episode(prompt, model, ScriptedTools(), model_name="scripted")
