"""The Gen-Searcher policy: the agent protocol as a state machine, and its drivers.

Stable API (the verl agent loop builds on it):

* :mod:`policy.protocol`: ``parse_turn``, ``parse_answer``, ``cut_hallucinated_response``,
  ``ToolCall``, ``Answer``, ``ReferenceImage``, ``FormatError``, ``AnswerError``.
* :mod:`policy.image_ids`: ``ImageRegistry`` (IMG_### ↔ store id).
* :mod:`policy.episode`: ``Episode``, ``EpisodeConfig``, actions ``RunTools`` /
  ``Continue`` / ``Finished``, ``ToolResult``, ``ToolImage``, ``EpisodeResult``,
  ``Termination``, ``to_openai_messages``, ``message_images``, ``message_text``;
  ``Episode.record()`` gives the finished episode as a
  :class:`~gen_searcher_core.episode_record.EpisodeRecord` (``Termination`` and
  ``ResolvedReference`` live there and are re-exported here).
* :mod:`policy.prompts`: ``SYSTEM_PROMPT``, ``TOOL_SPECS``, ``build_system_prompt``.
* :mod:`policy.mcp_client`: ``McpConnection`` (the project's one MCP client session: reused,
  reconnecting, bearer token from ``GEN_SEARCHER_TOKEN``), ``ConnectionPool`` (sharing),
  ``McpConnectionError`` / ``McpCallError``; the verl bridge uses it too.
* :mod:`policy.mcp_tools`: ``McpTools`` (the episode's tools over one such session).
* :mod:`policy.chat` / :mod:`policy.driver`: the OpenAI-compatible inference driver
  (``EpisodeRun.record()``: the record with its turns; ``.trace()``: its JSON, ``trace.json``).

The package imports no tool code: tools are reached only through an MCP session.
"""

from gen_searcher_core.episode_record import ResolvedReference, Termination
from policy.episode import (
    Action,
    Continue,
    Episode,
    EpisodeConfig,
    EpisodeResult,
    Finished,
    RunTools,
    ToolImage,
    ToolResult,
    message_images,
    message_text,
    to_openai_messages,
)
from policy.image_ids import ImageEntry, ImageRegistry
from policy.protocol import Answer, AnswerError, FormatError, ReferenceImage, ToolCall, parse_answer, parse_turn

__all__ = [
    "Action",
    "Answer",
    "AnswerError",
    "Continue",
    "Episode",
    "EpisodeConfig",
    "EpisodeResult",
    "Finished",
    "FormatError",
    "ImageEntry",
    "ImageRegistry",
    "ReferenceImage",
    "ResolvedReference",
    "RunTools",
    "Termination",
    "ToolCall",
    "ToolImage",
    "ToolResult",
    "message_images",
    "message_text",
    "parse_answer",
    "parse_turn",
    "to_openai_messages",
]
