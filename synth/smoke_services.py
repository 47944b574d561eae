"""Scripted services for ``synth smoke``, the tests and the speed script: no keys, no weights, no network.

One Starlette app serves, on 127.0.0.1:

* ``/teacher/v1`` and ``/policy/v1``: OpenAI-compatible chat models that follow the agent
  protocol (an image search, then an answer citing ``IMG_001``), write prompts and closed-book
  plans. Markers in a prompt script broken behaviour: ``[noanswer]``, ``[badjson]``,
  ``[norefs]``, ``[hallucinate]``, ``[mixed]`` (odd seeds broken), ``[easy]`` (the closed-book
  plan is complete), ``[hardrl]`` / ``[solid]`` (the policy never / always answers; by default
  it answers on even seeds only, so rewards vary);
* ``/judge/v1``: a judge answering every rubric the pipeline sends (``[lowscore]``,
  ``[badtruth]``, ``[garbage]`` script bad outcomes);
* ``/images/v1``: an OpenAI-compatible images API (the tool server's ``openai`` render backend)
  drawing a pattern from the prompt (``[copy]``: a flat colour, like the tiny web's photos).

Each service can be given a latency and a capacity (requests served at once); every request
is logged, and busy intervals are kept for utilisation figures.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SEARCH_TERM = "Quorvath Bridge"  # a subject of the smoke web (verl_recipes.cpu.smoke_servers.PAGES)


@dataclass
class ServiceLog:
    """One scripted service: its latency, capacity, request log and busy intervals."""

    delay_s: float = 0.0
    capacity: int = 1000
    requests: list[dict[str, Any]] = field(default_factory=list)
    intervals: list[tuple[float, float]] = field(default_factory=list)
    fail_status: int | None = None  # answer every request with this HTTP status (an outage)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: Any = None

    def log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    async def serve(self) -> Any:
        if self._slots is None:
            self._slots = anyio.Semaphore(self.capacity)
        return self._slots


def _text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def _first_user(body: dict[str, Any]) -> str:
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
    return ""


def _completion(text: str, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(_text(body)) // 4, "completion_tokens": len(text) // 4},
        }
    )


SEARCH = (
    '<think>I need a photo of the subject.</think><tool_call>{"name": "image_search", '
    f'"arguments": {{"query": "{SEARCH_TERM}", "top_k": 2}}}}</tool_call>'
)


def answer(prompt: str, refs: int = 1, who: str = "teacher") -> str:
    references = [{"img_id": f"IMG_{i + 1:03d}", "note": "the subject"} for i in range(refs)]
    plan = {
        "gen_prompt": f"{prompt} Show the subject as in the first reference image ({who}).",
        "reference_images": references,
    }
    return f"<think>Enough.</think><answer>{json.dumps(plan)}</answer>"


def episode_turn(prompt: str, turn: int, seed: int, *, policy: bool) -> str:
    """The scripted model's turn ``turn`` (0-based) of an episode for ``prompt``."""
    broken = "[noanswer]" in prompt or ("[mixed]" in prompt and seed % 2 == 1)
    if policy:
        broken = "[hardrl]" in prompt or ("[solid]" not in prompt and seed % 2 == 1)
    if broken:
        return "<think>I am not sure what to do.</think>"
    if turn == 0:
        if "[hallucinate]" in prompt:
            return SEARCH + "\n<tool_response>IMG_001: a made-up photo</tool_response>"
        return SEARCH
    if "[badjson]" in prompt:
        return '<think>done</think><answer>{"gen_prompt": "unterminated</answer>'
    if "[norefs]" in prompt:
        return answer(prompt, refs=0)
    return answer(prompt, who="policy" if policy else "teacher")


def write_prompts(text: str) -> str:
    found = re.search(r"Write (\d+) distinct requests .* category \"([^\"]+)\"", text, re.DOTALL)
    n, category = (int(found.group(1)), found.group(2)) if found else (1, "misc")
    prompts = [
        {
            "prompt": f"Draw the {category} landmark number {i} of Velmora, the {SEARCH_TERM} district, at dusk.",
            "subjects": [f"Velmora {category} landmark {i}"],
            "facts": [f"landmark {i} is copper green"],
        }
        for i in range(n)
    ]
    return json.dumps({"prompts": prompts})


def judge_reply(text: str) -> str:
    """The scripted judge's answer to any of the pipeline's rubrics."""
    if "written from memory" in text:
        return json.dumps({"score": 1 if "ALLFACTS" in text else 0, "rationale": "scripted"})
    if "reference image made for a knowledge-intensive request" in text:
        return json.dumps({"score": 0 if "[badtruth]" in text else 1, "rationale": "scripted"})
    if "visual_correctness" in text:
        if "[garbage]" in text:
            return "I think it looks fine."
        v = 0.0 if "[lowscore]" in text else 1.0
        return json.dumps(
            {
                "faithfulness": v,
                "visual_correctness": v,
                "text_accuracy": v,
                "text_accuracy_na": True,
                "aesthetics": v,
                "rationale": "scripted",
            }
        )
    return json.dumps({"score": 0 if "[lowscore]" in text else 1, "rationale": "scripted"})


def pattern_image(prompt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    """What the scripted images API draws for ``prompt``: an 8x8 grid of shades from its digest
    (``[copy]``: a flat colour, like the tiny web's photos)."""
    from PIL import Image

    if "[copy]" in prompt:
        image = Image.new("RGB", size, (40, 160, 120))
    else:
        cells = hashlib.sha512(prompt.encode("utf-8")).digest()
        grid = Image.frombytes("L", (8, 8), cells)
        image = grid.resize(size, Image.Resampling.NEAREST).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class ScriptedServices:
    """The app and its per-service logs; serve it with any ASGI server (``serve_in_thread``)."""

    def __init__(self, **services: ServiceLog) -> None:
        self.services = {name: services.get(name) or ServiceLog() for name in ("teacher", "policy", "judge", "images")}

    def reset(self) -> None:
        """Forget every request and interval and end any scripted outage (between tests)."""
        for service in self.services.values():
            with service._lock:
                service.requests.clear()
                service.intervals.clear()
            service.fail_status = None

    def count(self) -> dict[str, int]:
        """Requests received so far, per service."""
        return {name: len(service.requests) for name, service in self.services.items()}

    async def _busy(self, name: str, entry: dict[str, Any], work: Any) -> Any:
        service = self.services[name]
        service.log(entry)
        if service.fail_status is not None:
            return JSONResponse(
                {"error": {"message": f"scripted {service.fail_status}"}}, status_code=service.fail_status
            )
        async with await service.serve():
            started = time.monotonic()
            if service.delay_s:
                await anyio.sleep(service.delay_s)
            try:
                return await work()
            finally:
                with service._lock:
                    service.intervals.append((started, time.monotonic()))

    async def _model(self, request: Request, name: str) -> Any:
        body = await request.json()
        prompt = _first_user(body)
        turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        seed = int(body.get("seed") or 0)
        entry = {"prompt": prompt, "seed": seed, "turn": turn}

        async def work() -> Any:
            text = _text(body)
            if text.startswith("Write ") and "distinct requests" in text:
                return _completion(write_prompts(text), body)
            if "Without searching and without any tools" in text:
                request_text = prompt.split("Request:", 1)[-1].strip()
                plan = f"{request_text} ALLFACTS" if "[easy]" in request_text else "a generic picture"
                return _completion(plan, body)
            episode_prompt = next(
                (
                    m["content"]
                    for m in body.get("messages", [])
                    if m.get("role") == "user" and isinstance(m.get("content"), str)
                ),
                prompt,
            )
            return _completion(episode_turn(episode_prompt, turn, seed, policy=name == "policy"), body)

        return await self._busy(name, entry, work)

    async def _teacher(self, request: Request) -> Any:
        return await self._model(request, "teacher")

    async def _policy(self, request: Request) -> Any:
        return await self._model(request, "policy")

    async def _judge(self, request: Request) -> Any:
        body = await request.json()
        text = _text(body)
        entry = {"text": text[:300], "prompt": text}

        async def work() -> Any:
            return _completion(judge_reply(text), body)

        return await self._busy("judge", entry, work)

    async def _images(self, request: Request) -> Any:
        if request.headers.get("content-type", "").startswith("multipart/"):
            form = await request.form()
            prompt, size = str(form.get("prompt", "")), str(form.get("size", "64x64"))
        else:
            body = await request.json()
            prompt, size = str(body.get("prompt", "")), str(body.get("size", "64x64"))
        width, height = (int(x) for x in size.split("x")) if "x" in size else (64, 64)

        async def work() -> Any:
            data = await anyio.to_thread.run_sync(pattern_image, prompt, (min(width, 256), min(height, 256)))
            return JSONResponse({"created": int(time.time()), "data": [{"b64_json": base64.b64encode(data).decode()}]})

        return await self._busy("images", {"prompt": prompt}, work)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/teacher/v1/chat/completions", self._teacher, methods=["POST"]),
                Route("/policy/v1/chat/completions", self._policy, methods=["POST"]),
                Route("/judge/v1/chat/completions", self._judge, methods=["POST"]),
                Route("/images/v1/images/generations", self._images, methods=["POST"]),
                Route("/images/v1/images/edits", self._images, methods=["POST"]),
            ]
        )
