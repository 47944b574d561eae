"""A judge client for any OpenAI-compatible vision chat model.

One :class:`JudgeClient` serves many concurrent judgements: requests run at
temperature 0 under a concurrency bound and an optional rate limit, transient
failures (transport errors, 408/409/429/5xx) are retried with exponential
backoff (or after the server's ``Retry-After``), and replies must be a single JSON object. A reply that does not parse
or does not validate gets exactly one repair turn; if that fails too, the item
gets a :class:`JudgeError` and the caller carries on with the next one.

Configuration comes from :class:`~benchmark.settings.JudgeSettings`, the
``[judge]`` section (environment variables ``GEN_SEARCHER_JUDGE_BASE_URL``,
``GEN_SEARCHER_JUDGE_MODEL``, ``GEN_SEARCHER_JUDGE_API_KEY``; the key falls back
to ``OPENAI_API_KEY``).
The key is a ``SecretStr`` and never appears in errors or logs.

The transport is the project's one chat-completions client
(:class:`gen_searcher_core.chat_client.ChatClient`, shared with the policy and
the summaries) with the judge's own retry policy and key: never the policy's
``GEN_SEARCHER_POLICY_API_KEY``, which must not reach a judge host. The runner
tells transient failures (not recorded, retried by a rerun) from refusals.

Usage::

    async with JudgeClient(JudgeSettings(base_url=url, model="gpt-4.1")) as judge:
        judgement = await judge_kscore(judge, prompt=p, image=path, gt_image=gt)
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import anyio
import httpx

from benchmark.settings import JudgeSettings
from gen_searcher_core.chat_client import ChatClient, ChatError, RetryPolicy
from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.imaging import png_data_url

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a rubric may pass as an image: raw bytes, a file path, a PIL image or a ready ``data:`` URL.
ImageInput = Any

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class JudgeError(UserFacingError):
    """One item could not be judged (unreachable judge, refused request, or an unparseable reply).

    ``raw`` holds the judge's last reply (truncated) when there was one.
    ``transient`` marks failures that may pass on a later try (judge unreachable
    or overloaded after all retries), as opposed to refusals and bad replies.
    """

    def __init__(self, message: str, *, raw: str | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.raw = raw[:2000] if raw else raw
        self.transient = transient


def _describe(exc: ChatError) -> str:
    """The judge's words for a failed completion (the runner shows them per item)."""
    if exc.kind in ("timeout", "unreachable"):
        return f"judge unreachable: {exc.cause}: {exc.cause_text}"
    if exc.kind == "status" and exc.transient:
        return f"judge returned HTTP {exc.status}"
    if exc.kind == "status":
        return f"judge refused the request: HTTP {exc.status}: {exc.body_excerpt.replace(chr(10), ' ')}"
    return "judge returned a malformed chat completion"


# ---------------------------------------------------------------- images


def _encode_image(image: ImageInput, max_side: int) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, str) and image.startswith("data:"):
        return image
    try:
        if isinstance(image, Image.Image):
            pil = image
        else:
            data = Path(image).read_bytes() if isinstance(image, (str, Path)) else bytes(image)
            pil = Image.open(io.BytesIO(data))
            pil.load()
    except FileNotFoundError as exc:
        raise JudgeError(f"image not found: {exc.filename}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise JudgeError(f"unreadable image: {exc}") from None
    if max(pil.size) > max_side:
        pil = pil.copy()
        pil.thumbnail((max_side, max_side))
    if pil.mode not in ("RGB", "L"):
        pil = pil.convert("RGB")
    return png_data_url(pil)


async def image_data_url(image: ImageInput, max_side: int = 1536) -> str:
    """Encode ``image`` (bytes, path, PIL image) as a PNG data URL, off the event loop."""
    return await anyio.to_thread.run_sync(_encode_image, image, max_side)


# ---------------------------------------------------------------- JSON

_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a reply that must be exactly one JSON object.

    Tolerated around it: a single ```json fence, and a leading ``<think>…</think>``
    block (reasoning models such as Qwen3-VL served without a reasoning parser).
    """
    stripped = _THINK.sub("", text, count=1).strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"reply is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"reply is JSON but not an object (got {type(value).__name__})")
    return value


# ---------------------------------------------------------------- client


def user_content(text: str, images: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """OpenAI content parts: ``text`` then, for each ``(label, data_url)``, a label line and the image."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for label, url in images:
        parts.append({"type": "text", "text": label})
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


@runtime_checkable
class Judge(Protocol):
    """What the rubrics need from a judge; :class:`JudgeClient` is the shipped one.

    A judge for another API implements these three members and every rubric works with it.
    """

    @property
    def model(self) -> str: ...

    async def image(self, image: ImageInput) -> str: ...

    async def judge_json(
        self, messages: Sequence[Mapping[str, Any]], validate: Callable[[dict[str, Any]], T], *, repair_hint: str = ""
    ) -> T: ...


class JudgeClient:
    """Async client for an OpenAI-compatible judge. Use as ``async with`` or call :meth:`aclose`."""

    def __init__(self, settings: JudgeSettings | None = None, *, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings or JudgeSettings()
        retry = RetryPolicy(
            max_attempts=self.settings.max_attempts,
            statuses=_RETRY_STATUS,
            malformed=True,
            backoff_initial_s=self.settings.backoff_initial_s,
            backoff_max_s=self.settings.backoff_max_s,
            jitter=True,
            retry_after_max_s=self.settings.backoff_max_s,
        )
        self._client = ChatClient(
            self.settings.base_url,
            api_key=self.settings.api_key,
            timeout_s=self.settings.timeout_s,
            retry=retry,
            rate_limit_per_s=self.settings.rate_limit_per_s,
            http=http,
        )
        self._slots = anyio.Semaphore(self.settings.max_concurrency)

    @property
    def model(self) -> str:
        return self.settings.model

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def image(self, image: ImageInput) -> str:
        """Data URL for ``image`` at this judge's size cap."""
        return await image_data_url(image, self.settings.max_image_side)

    async def complete(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """One chat completion at temperature 0, retried on transient failures; returns the reply text.

        Transient failures (unreachable, 408/409/425/429/5xx, a malformed reply) are retried after the
        server's ``Retry-After`` (at most ``backoff_max_s``) or a jittered exponential backoff.
        """
        body = {
            "model": self.settings.model,
            "messages": list(messages),
            "temperature": 0,
            "max_tokens": self.settings.max_tokens,
        }
        async with self._slots:
            try:
                return (await self._client.complete(body)).text
            except ChatError as exc:
                if not exc.transient:
                    raise JudgeError(_describe(exc)) from None
                attempts = self.settings.max_attempts
                raise JudgeError(f"{_describe(exc)} (after {attempts} attempts)", transient=True) from None

    async def judge_json(
        self,
        messages: Sequence[Mapping[str, Any]],
        validate: Callable[[dict[str, Any]], T],
        *,
        repair_hint: str = "",
    ) -> T:
        """Ask, parse one JSON object and ``validate`` it (``ValueError`` = invalid).

        On a bad reply the judge gets one repair turn quoting the problem; a second
        bad reply raises :class:`JudgeError` carrying the raw text.
        """
        reply = await self.complete(messages)
        try:
            return validate(parse_json_object(reply))
        except ValueError as exc:
            problem = str(exc)
        repair = [
            *messages,
            {"role": "assistant", "content": reply},
            {
                "role": "user",
                "content": (
                    f"Your previous reply could not be used: {problem}. Reply again with only the JSON object, "
                    f"no prose and no code fence. {repair_hint}"
                ).strip(),
            },
        ]
        second = await self.complete(repair)
        try:
            return validate(parse_json_object(second))
        except ValueError as exc:
            raise JudgeError(f"unparseable judge reply after one repair attempt: {exc}", raw=second) from None
