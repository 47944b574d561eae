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

from gen_searcher_core.chat_client import ChatClient, ChatError, ChatReply, RetryPolicy
from gen_searcher_core.errors import UserFacingError
from policy.episode import to_openai_messages
from policy.settings import PolicyConfig

__all__ = ["ChatModel", "ChatModelError", "ChatReply", "OpenAIChatModel", "Sampling"]


class ChatModelError(UserFacingError, RuntimeError):
    """The model server could not produce a reply (after retries)."""


class ChatModel(Protocol):
    """Anything that answers episode messages with the model's next turn."""

    async def chat(self, messages: Sequence[dict[str, Any]]) -> ChatReply: ...


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 4096
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific body fields (e.g. top_k for vLLM)


class OpenAIChatModel:
    """``POST {base_url}/chat/completions``; ``base_url`` usually ends in ``/v1``.

    Transient failures (transport errors, 429 and 5xx) are retried up to
    ``max_attempts`` tries in all, after the server's ``Retry-After`` (at most
    60 s) or an exponential backoff from ``retry_wait_s``.
    """

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
        retry = RetryPolicy(max_attempts=max_attempts, backoff_initial_s=retry_wait_s, backoff_max_s=30.0)
        self._client = ChatClient(
            self.base_url,
            api_key=api_key or PolicyConfig().chat_api_key(),  # the environment ([policy], OPENAI_API_KEY)
            timeout_s=timeout_s,
            retry=retry,
            http=http_client,
        )

    async def __aenter__(self) -> OpenAIChatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

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
        try:
            return await self._client.complete(self.request_body(messages))
        except ChatError as exc:
            raise ChatModelError(self._describe(exc)) from None

    def _describe(self, exc: ChatError) -> str:
        if exc.kind in ("timeout", "unreachable"):
            return f"model server at {self.base_url} unreachable: {exc.cause}"
        if exc.kind == "status" and exc.transient:
            return f"model server at {self.base_url} answered HTTP {exc.status} (gave up)"
        if exc.kind == "status":
            return f"model server answered HTTP {exc.status}: {exc.error_text}"
        return "model server returned a malformed chat completion"
