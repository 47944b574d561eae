"""One OpenAI-compatible chat-completions transport for the policy's model, the summary model and the judge.

:meth:`ChatClient.complete` posts a body to ``{base_url}/chat/completions`` with
the bearer key (a ``SecretStr`` or plain string, sent only as a header and never
put in an error), retries what its :class:`RetryPolicy` calls transient after
the server's ``Retry-After`` or an exponential backoff, spaces request starts
under an optional rate limit, and returns the parsed :class:`ChatReply`. A
failure raises :class:`ChatError` saying what went wrong (``kind``, ``status``,
the transport error's type) so that each caller words it for its own users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_exponential_jitter

from gen_searcher_core.errors import UserFacingError
from gen_searcher_core.http_retry import parse_retry_after, rate_limiter

ChatErrorKind = Literal["timeout", "unreachable", "status", "malformed"]

#: Statuses that say "try again later": 429 and every 5xx.
TRY_LATER_STATUSES = frozenset({429, *range(500, 600)})


@dataclass(frozen=True)
class ChatReply:
    """The model's reply: its text, and whether it was cut at the token limit (``finish_reason == "length"``)."""

    text: str
    truncated: bool
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    has_text: bool = True  # False when the message carried no content at all ("content": null)


class ChatError(UserFacingError):
    """A chat completion failed; ``str()`` is a short safe description (no key, no body).

    ``kind``: ``timeout`` or ``unreachable`` (transport; ``cause`` names the
    exception type, ``cause_text`` its message), ``status`` (an HTTP error:
    ``status``, ``retry_after``, ``error_text`` = the server's error message or
    body excerpt, ``body_excerpt``), ``malformed`` (not a chat completion).
    ``transient``: the retry policy counted it as worth retrying.
    """

    def __init__(
        self,
        kind: ChatErrorKind,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        cause: str = "",
        cause_text: str = "",
        error_text: str = "",
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.cause = cause
        self.cause_text = cause_text
        self.error_text = error_text
        self.body_excerpt = body_excerpt


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried, how often, and how long to wait between tries."""

    max_attempts: int = 1
    statuses: frozenset[int] = TRY_LATER_STATUSES
    transport: bool = True  # connection failures and time-outs
    malformed: bool = False  # replies that are not a chat completion
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    jitter: bool = False
    retry_after_max_s: float = 60.0  # a longer Retry-After is cut to this


def parse_reply(data: Any, *, with_reasoning: bool = True) -> ChatReply:
    """A chat completion's first choice; raises ``ChatError("malformed")``.

    Content parts are joined. With ``with_reasoning``, the thinking a vLLM
    reasoning parser moved out of ``content`` is put back as ``<think>…</think>``
    (where the agent protocol has it).
    """
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ChatError("malformed", "malformed chat completion") from None
    has_text = content is not None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    content = content if isinstance(content, str) else ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if with_reasoning and isinstance(reasoning, str) and reasoning.strip() and "</think>" not in content:
        content = f"<think>{reasoning.strip()}</think>\n{content.lstrip()}"
    finish = choice.get("finish_reason")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    return ChatReply(text=content, truncated=finish == "length", finish_reason=finish, usage=usage, has_text=has_text)


def _error_text(response: httpx.Response) -> str:
    """The server's error message (OpenAI ``{"error": {"message": …}}``), else the start of the body."""
    try:
        data = response.json()
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except ValueError:
        pass
    return response.text[:300]


class ChatClient:
    """``POST {base_url}/chat/completions``; ``base_url`` usually ends in ``/v1``. Close with :meth:`aclose`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: SecretStr | str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float | None = 10.0,
        retry: RetryPolicy | None = None,
        rate_limit_per_s: float | None = None,
        trust_env: bool = True,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.retry = retry or RetryPolicy()
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._rate = rate_limiter(rate_limit_per_s, burst=1)  # starts spaced 1/rate apart
        self._owns_http = http is None
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s if connect_timeout_s is not None else timeout_s)
        self._http = http or httpx.AsyncClient(timeout=timeout, trust_env=trust_env)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def complete(self, body: Mapping[str, Any], *, with_reasoning: bool = True) -> ChatReply:
        """The reply to ``body`` (``model``, ``messages``, sampling fields), retried per the policy.

        Raises the last :class:`ChatError` when every try failed (or the first one that is not transient).
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, ChatError) and exc.transient),
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post_once(body, with_reasoning)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ChatError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.retry_after_max_s)
        if self.retry.jitter:
            return wait_exponential_jitter(multiplier=self.retry.backoff_initial_s, max=self.retry.backoff_max_s)(state)
        return wait_exponential(multiplier=self.retry.backoff_initial_s, max=self.retry.backoff_max_s)(state)

    async def _post_once(self, body: Mapping[str, Any], with_reasoning: bool) -> ChatReply:
        try:
            async with self._rate:
                response = await self._http.post(self.url, json=dict(body), headers=self._headers)
        except httpx.TimeoutException as exc:
            raise ChatError(
                "timeout", "timed out", transient=self.retry.transport, cause=type(exc).__name__, cause_text=str(exc)
            ) from None
        except httpx.HTTPError as exc:
            transient = self.retry.transport and isinstance(exc, httpx.TransportError)
            raise ChatError(
                "unreachable",
                f"unreachable ({type(exc).__name__})",
                transient=transient,
                cause=type(exc).__name__,
                cause_text=str(exc),
            ) from None
        if response.status_code >= 400:
            raise ChatError(
                "status",
                f"HTTP {response.status_code}",
                transient=response.status_code in self.retry.statuses,
                status=response.status_code,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                error_text=_error_text(response),
                body_excerpt=response.text[:300],
            )
        try:
            return parse_reply(response.json(), with_reasoning=with_reasoning)
        except (ValueError, ChatError):
            raise ChatError("malformed", "malformed chat completion", transient=self.retry.malformed) from None
