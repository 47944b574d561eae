"""Helpers for writing model scripts and reading what the model server received."""

from __future__ import annotations

import json
from typing import Any

from policy.episode import message_text


def tool_call(name: str, think: str = "next step", **arguments: Any) -> str:
    return f"<think>{think}</think>\n<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def answer(*ids: str, prompt: str = "The Quorvath Bridge as in the first reference image.", think: str = "done") -> str:
    refs = [{"img_id": i, "note": f"reference {i}"} for i in ids]
    return f"<think>{think}</think>\n<answer>{json.dumps({'gen_prompt': prompt, 'reference_images': refs})}</answer>"


def last_user_text(request: dict[str, Any]) -> str:
    return message_text(request["messages"][-1])


def image_urls(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [part["image_url"]["url"] for part in content if part["type"] == "image_url"]
