"""Goal-directed summaries through any OpenAI-compatible chat completions server.

Long pages are split into chunks on paragraph boundaries; chunks are summarized
concurrently (bounded) and the partial notes merged in one more call. Chunks
with nothing relevant answer a fixed marker, so a page with nothing relevant
is reported as such instead of as an invented summary.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import anyio
from pydantic import SecretStr

from gen_searcher_core.chat_client import ChatClient, ChatError
from gen_searcher_core.errors import UserFacingError
from search_tools.settings import SummarySettings
from search_tools.text_split import break_before

NOTHING_RELEVANT = "NOTHING_RELEVANT"
_SYSTEM = (
    "You extract information from web pages for a research assistant. Given the user's goal and "
    "page text, write concise notes with every fact, name, number, date and visual detail relevant "
    "to the goal, in the page's own terms. Do not add knowledge that is not in the text. If the "
    f"text holds nothing relevant to the goal, answer exactly {NOTHING_RELEVANT}."
)
_MERGE_SYSTEM = (
    "You merge notes taken from consecutive parts of one web page into one concise summary for the "
    "user's goal. Keep every relevant fact, drop repetitions, add nothing that is not in the notes."
)


class SummaryError(UserFacingError, RuntimeError):
    """The summary model could not be reached or answered badly; never contains the key."""


@runtime_checkable
class Summarizer(Protocol):
    """The summary seam the browse service takes: goal-directed notes on a window of page text."""

    @property
    def cache_key(self) -> str:
        """What decides this summarizer's answers (model, window), for the browse cache key."""
        ...

    def window_end(self, text: str, offset: int) -> int | None:
        """Where the text one ``summarize`` call covers from ``offset`` ends; None when it reaches the end."""
        ...

    async def summarize(self, text: str, goal: str) -> str: ...


def chunk_spans(text: str, chunk_chars: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive pieces of at most ``chunk_chars``, cut at a paragraph, line or word end."""
    spans: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > chunk_chars:
        end = break_before(text, start + chunk_chars, floor=start + chunk_chars // 2)
        spans.append((start, end))
        start = end
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def split_chunks(text: str, chunk_chars: int) -> list[str]:
    """The non-empty pieces of ``chunk_spans``, stripped."""
    pieces = (text[a:b].strip() for a, b in chunk_spans(text, chunk_chars))
    return [p for p in pieces if p]


def is_nothing(answer: str) -> bool:
    return answer.strip().strip(".").upper().startswith(NOTHING_RELEVANT)


class ChatSummarizer:
    """``summarize(text, goal)`` over ``POST {base_url}/chat/completions``."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: SecretStr | None = None,
        chunk_chars: int = 12_000,
        max_chunks: int = 8,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_tokens: int = 1024,
    ) -> None:
        self.model = model
        self.chunk_chars = chunk_chars
        self.max_chunks = max_chunks
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._max_tokens = max_tokens
        # One try per chunk: a failed chunk fails the summary (the caller gets a clear tool error).
        self._client = ChatClient(
            base_url, api_key=api_key, timeout_s=timeout_s, connect_timeout_s=None, trust_env=False
        )

    @classmethod
    def from_settings(cls, s: SummarySettings, *, api_key: SecretStr | None = None) -> ChatSummarizer | None:
        """A summarizer when the section names a server and a model, else None.

        ``api_key`` is the fallback when the section has no key of its own (``OPENAI_API_KEY``).
        """
        if not s.base_url or not s.model:
            return None
        return cls(
            base_url=s.base_url,
            model=s.model,
            api_key=s.api_key or api_key,
            chunk_chars=s.chunk_chars,
            max_chunks=s.max_chunks,
            max_concurrency=s.max_concurrency,
            timeout_s=s.timeout_s,
        )

    @property
    def cache_key(self) -> str:
        return f"{self.model}:{self.chunk_chars}:{self.max_chunks}"

    async def aclose(self) -> None:
        await self._client.aclose()

    def window_end(self, text: str, offset: int) -> int | None:
        """Where the text one ``summarize`` call covers from ``offset`` ends, or None when it reaches the end."""
        spans = chunk_spans(text[offset : offset + self.chunk_chars * (self.max_chunks + 1)], self.chunk_chars)
        if not spans:
            return None
        if len(spans) <= self.max_chunks and offset + spans[-1][1] >= len(text):
            return None
        return offset + spans[min(self.max_chunks, len(spans)) - 1][1]

    async def summarize(self, text: str, goal: str) -> str:
        """Notes on ``text`` for ``goal``; when nothing is relevant the answer says so explicitly."""
        chunks = split_chunks(text, self.chunk_chars)
        notes: list[str] = [""] * len(chunks)

        errors: list[SummaryError] = []

        async def one(i: int, chunk: str, scope: anyio.CancelScope) -> None:
            part = f" (part {i + 1} of {len(chunks)})" if len(chunks) > 1 else ""
            try:
                notes[i] = await self._chat(_SYSTEM, f"Goal: {goal}\n\nPage text{part}:\n{chunk}")
            except SummaryError as exc:  # the first failure ends the others: the summary would be partial
                errors.append(exc)
                scope.cancel()

        async with anyio.create_task_group() as tg:
            for i, chunk in enumerate(chunks):
                tg.start_soon(one, i, chunk, tg.cancel_scope)
        if errors:
            raise errors[0]
        relevant = [n.strip() for n in notes if n.strip() and not is_nothing(n)]
        if not relevant:
            return f"The page contains nothing relevant to the goal: {goal}"
        if len(relevant) == 1:
            return relevant[0]
        joined = "\n\n".join(f"Notes from part {i + 1}:\n{n}" for i, n in enumerate(relevant))
        merged = await self._chat(_MERGE_SYSTEM, f"Goal: {goal}\n\n{joined}")
        if is_nothing(merged) or not merged.strip():
            return joined
        return merged.strip()

    async def _chat(self, system: str, user: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0.0,
            "max_tokens": self._max_tokens,
        }
        async with self._limiter:
            try:
                reply = await self._client.complete(body, with_reasoning=False)
            except ChatError as exc:
                raise SummaryError(_describe(exc)) from None
        if not reply.has_text:
            raise SummaryError("the summary model sent no text")
        return reply.text


def _describe(exc: ChatError) -> str:
    if exc.kind == "timeout":
        return "the summary model timed out"
    if exc.kind == "unreachable":
        return f"the summary model could not be reached: {exc.cause}"
    if exc.kind == "status":
        return f"the summary model answered HTTP {exc.status}"
    return "the summary model sent a malformed chat completion"
