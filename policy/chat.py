"""An OpenAI-compatible chat-completions client (vLLM, or any provider) for the policy.

The key comes from the constructor or, when none is given, the ``[policy]``
settings section (``GEN_SEARCHER_POLICY_API_KEY``, then ``OPENAI_API_KEY``; see
:mod:`policy.settings`); it is sent only as a bearer header and is never logged
or put into an error. ``finish_reason == "length"`` marks a reply
as truncated, which the episode treats as a too-long turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.http_retry import parse_retry_after
from policy.episode import to_openai_messages
from policy.settings import PolicyConfig


class ChatModelError(UserFacingError, RuntimeError):
    """The model server could not produce a reply (after retries)."""


@dataclass(frozen=True)
class ChatReply:
    text: str
    truncated: bool
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


class ChatModel(Protocol):
    """Anything that answers episode messages with the model's next turn."""

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply: ...


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 4096
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific body fields (e.g. top_k for vLLM)


class _RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableStatus, httpx.TransportError))


class OpenAIChatModel:
    """``POST {base_url}/chat/completions``; ``base_url`` usually ends in ``/v1``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: SecretStr | str | None = None,
        sampling: Sampling | None = None,
        timeout_s: float = 300.0,
        max_attempts: int = 3,
        retry_wait_s: float = 1.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.sampling = sampling or Sampling()
        self._max_attempts = max_attempts
        self._retry_wait_s = retry_wait_s
        secret = api_key or PolicyConfig().chat_api_key()  # the environment ([policy], OPENAI_API_KEY)
        key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0))
        self._headers = headers

    async def __aenter__(self) -> OpenAIChatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    def request_body(self, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_tokens,
            **self.sampling.extra,
        }

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply:
        body = self.request_body(messages)
        url = f"{self.base_url}/chat/completions"
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                stop=stop_after_attempt(self._max_attempts),
                wait=self._wait,
                reraise=True,
            ):
                with attempt:
                    response = await self._http.post(url, json=body, headers=self._headers)
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _RetryableStatus(
                            response.status_code, parse_retry_after(response.headers.get("retry-after"))
                        )
        except _RetryableStatus as exc:
            raise ChatModelError(f"model server at {self.base_url} answered HTTP {exc.status} (gave up)") from None
        except httpx.HTTPError as exc:
            raise ChatModelError(f"model server at {self.base_url} unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise ChatModelError(f"model server answered HTTP {response.status_code}: {_error_text(response)}")
        return parse_reply(response)

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, 60.0)
        return wait_exponential(multiplier=self._retry_wait_s, max=30.0)(state)


def parse_reply(response: httpx.Response) -> ChatReply:
    try:
        data = response.json()
        choice = data["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise ChatModelError("model server returned a malformed chat completion") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    content = content or ""
    # vLLM with a reasoning parser moves the thinking out of ``content``; put it back where the protocol has it.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning.strip() and "</think>" not in content:
        content = f"<think>{reasoning.strip()}</think>\n{content.lstrip()}"
    finish = choice.get("finish_reason")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    return ChatReply(text=content, truncated=finish == "length", finish_reason=finish, usage=usage)


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        if message:
            return str(message)[:300]
    except ValueError:
        pass
    return response.text[:300]
