"""The demo's stand-ins for real models: a scripted policy and a scripted judge, both OpenAI-compatible.

They answer ``POST /v1/chat/completions`` on loopback, so the demo runs the same
HTTP clients, episode driver and judge code as a real run. Neither is a model:

* the policy follows a fixed plan (search, browse the first hit, image-search,
  answer with the first images found), reading only what the tools returned;
* the judge compares the candidate picture with the ground truth pixel by pixel
  and turns the difference into K-Score answers; asked the training reward's text
  rubric (it cannot read a plan), it gives every plan the middle score, 0.5;
* without the render extra, an images API (``/v1/images/edits`` and
  ``/generations``) "renders" by handing back the first reference, softened, or
  a plain sketch of the prompt's colours: no model draws anything.

Every page and line the demo writes says so (:data:`NOTICE`).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from policy.protocol import ToolCall, format_tool_calls

POLICY_MODEL = "scripted-policy"
JUDGE_MODEL = "scripted-judge"
RENDER_MODEL = "scripted-renderer"
NOTICE = (
    "Demo run: the policy model and the judge are scripted stand-ins (fixed rules on 127.0.0.1), not real "
    "models, and the pages searched are the demo's small sample web. Scores say nothing about Gen-Searcher's "
    "quality."
)


def notice_for(renderer: str) -> str:
    """:data:`NOTICE` plus what made the pictures."""
    return f"{NOTICE} Pictures: {renderer}."


_URL = re.compile(r"https?://[^\s\"'<>)\]]+\.html")
_IMG = re.compile(r"\bIMG_\d{3}\b")
_TOOL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def message_text(message: dict[str, Any]) -> str:
    """The text parts of an OpenAI chat message."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _called(messages: Sequence[dict[str, Any]]) -> list[str]:
    names = []
    for message in messages:
        if message.get("role") == "assistant":
            for raw in _TOOL.findall(message_text(message)):
                try:
                    names.append(str(json.loads(raw).get("name")))
                except ValueError:
                    continue
    return names


def policy_turn(messages: Sequence[dict[str, Any]]) -> str:
    """The scripted policy's next reply: the first step of its plan not yet taken, then the answer."""
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    prompt = users[0].strip() if users else ""
    tool_text = "\n".join(users[1:])
    called = _called(messages)
    if "search" not in called:
        call = ToolCall("search", {"queries": [prompt[:200]], "top_k": 3})
        return f"<think>Scripted step 1: search the request.</think>\n{format_tool_calls([call])}"
    urls = _URL.findall(tool_text)
    if "browse" not in called and urls:
        call = ToolCall("browse", {"url": urls[0], "goal": f"what {prompt[:120]} looks like"})
        return f"<think>Scripted step 2: read the first hit.</think>\n{format_tool_calls([call])}"
    if "image_search" not in called:
        call = ToolCall("image_search", {"query": prompt[:200], "top_k": 3})
        return f"<think>Scripted step 3: find reference photos.</think>\n{format_tool_calls([call])}"
    img_ids = list(dict.fromkeys(_IMG.findall(tool_text)))[:2]
    answer = {
        "gen_prompt": f"{prompt}. Keep the shape and colours of the building in the first reference image.",
        "reference_images": [{"img_id": img_id, "note": "found by image search (scripted pick)"} for img_id in img_ids],
    }
    return f"<think>Scripted step 4: answer.</think>\n<answer>{json.dumps(answer, ensure_ascii=False)}</answer>"


def _decode(url: str) -> Any:
    from PIL import Image

    _, _, data = url.partition(",")
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return image.convert("RGB").resize((32, 32))


def similarity(first_url: str, second_url: str) -> float:
    """1 minus the mean absolute pixel difference of two ``data:`` images at 32x32 (1 = identical)."""
    a, b = _decode(first_url), _decode(second_url)
    diff = sum(abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True))  # RGB bytes, 32x32
    return 1.0 - float(diff) / (32 * 32 * 3 * 255)


def _asks_text_rubric(messages: Sequence[dict[str, Any]]) -> bool:
    from benchmark.rubrics.text import SYSTEM_PROMPT

    return any(m.get("role") == "system" and message_text(m) == SYSTEM_PROMPT for m in messages)


def judge_reply(messages: Sequence[dict[str, Any]]) -> str:
    """K-Score answers from the pixel similarity of the request's two images; 0.5 for any plan (text rubric)."""
    if _asks_text_rubric(messages):
        return json.dumps({"score": 0.5, "rationale": "Scripted judge, not a model: every plan gets 0.5."})
    urls = [
        part["image_url"]["url"]
        for message in messages
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]
    sim = similarity(urls[0], urls[-1]) if len(urls) >= 2 else 0.0
    level = 1.0 if sim >= 0.85 else 0.5 if sim >= 0.7 else 0.0
    return json.dumps(
        {
            "faithfulness": level,
            "visual_correctness": level,
            "text_accuracy": 0,
            "text_accuracy_na": True,
            "aesthetics": 0.5,
            "rationale": f"Scripted judge, not a model: the pictures' pixels agree {100 * sim:.0f}% at 32x32.",
        }
    )


def _completion(model: str, text: str, prompt_chars: int) -> dict[str, Any]:
    prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(text) // 4)
    return {
        "id": "scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chat_app(model: str, reply: Callable[[Sequence[dict[str, Any]]], str]) -> Starlette:
    """An OpenAI-compatible ``/v1/chat/completions`` whose every reply is ``reply(messages)``."""

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        messages = body.get("messages") or []
        text = reply(messages)
        return JSONResponse(_completion(model, text, sum(len(message_text(m)) for m in messages)))

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def _png_b64(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def scripted_render(prompt: str, size: str, reference: bytes | None) -> str:
    """A base64 PNG: the first reference, softened and resized, or (with none) a flat sketch."""
    from PIL import Image, ImageDraw, ImageFilter

    width, _, height = size.partition("x")
    box = (int(width or 256), int(height or 256))
    if reference is not None:
        with Image.open(io.BytesIO(reference)) as opened:
            return _png_b64(opened.convert("RGB").resize(box).filter(ImageFilter.GaussianBlur(2)))
    sketch = Image.new("RGB", box, (150, 196, 232))
    ImageDraw.Draw(sketch).rectangle((0, box[1] * 2 // 3, box[0], box[1]), fill=(38, 92, 140))
    return _png_b64(sketch)


def images_app() -> Starlette:
    """A scripted OpenAI-compatible images API (the demo's renderer when the render extra is missing)."""

    async def edits(request: Request) -> JSONResponse:
        form = await request.form()
        upload = form.getlist("image[]")
        first = await upload[0].read() if upload and hasattr(upload[0], "read") else None
        return JSONResponse(
            {
                "created": 0,
                "data": [{"b64_json": scripted_render(str(form.get("prompt")), str(form.get("size")), first)}],
            }
        )

    async def generations(request: Request) -> JSONResponse:
        body = await request.json()
        image = scripted_render(str(body.get("prompt")), str(body.get("size") or ""), None)
        return JSONResponse({"created": 0, "data": [{"b64_json": image}]})

    return Starlette(
        routes=[
            Route("/v1/images/edits", edits, methods=["POST"]),
            Route("/v1/images/generations", generations, methods=["POST"]),
        ]
    )


def policy_app() -> Starlette:
    """The scripted policy as an OpenAI-compatible chat server."""
    return chat_app(POLICY_MODEL, policy_turn)


def judge_app() -> Starlette:
    """The scripted judge as an OpenAI-compatible chat server."""
    return chat_app(JUDGE_MODEL, judge_reply)
