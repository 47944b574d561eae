"""One error tree: every deliberate error is a ``GenSearcherError``; messages safe to show are ``UserFacingError``s.

Unknown resources answer the MCP specification's resource-not-found error, checked with real
clients over streamable HTTP: ``-32002`` for a session on protocol 2025-11-25 (the
initialize handshake), ``-32602`` on 2026-07-28, which retired ``-32002`` (SEP-2164).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from benchmark.datasets import DatasetError
from benchmark.generate import GenerationError
from benchmark.judge import JudgeError
from benchmark.report import CompareError
from benchmark.rubrics.kscore import UnknownCategoryError
from gen_searcher_core.errors import GenSearcherError, UserFacingError, describe_failure
from mcp_server.launcher import RemoteServerError
from mcp_server.tools.results import RESOURCE_NOT_FOUND
from policy.chat import ChatModelError
from policy.episode import EpisodeStateError
from policy.mcp_client import McpCallError, McpConnectionError
from policy.protocol import AnswerError, FormatError
from render_tools.base import InvalidRenderRequest, RenderError, RendererUnavailable
from safe_io.fetcher import BlockedAddress, FetchError, HttpStatusError
from safe_io.image_store import ImageNotFoundError
from search_tools.backends.base import SearchBackendError
from search_tools.browse import BrowseError
from search_tools.cache import CacheError, CacheMissError
from search_tools.extract import ExtractionError
from search_tools.image_fetch import ImageRejected
from search_tools.index import IndexBuildError, IndexNotFoundError
from search_tools.summarize import SummaryError
from tests.support.tool_server import run_tool_server, write_index
from verl_recipes.data import BadRow, ConversionError
from verl_recipes.launch import LaunchError
from verl_recipes.reward import RewardFailure

USER_FACING = [
    SearchBackendError,
    FetchError,
    BlockedAddress,
    HttpStatusError,
    BrowseError,
    ExtractionError,
    SummaryError,
    ImageNotFoundError,
    ImageRejected,
    CacheError,
    CacheMissError,
    IndexBuildError,
    IndexNotFoundError,
    RenderError,
    InvalidRenderRequest,
    RendererUnavailable,
    RemoteServerError,
    McpCallError,
    McpConnectionError,
    ChatModelError,
    FormatError,
    AnswerError,
    JudgeError,
    GenerationError,
    DatasetError,
    CompareError,
    UnknownCategoryError,
    ConversionError,
    BadRow,
    LaunchError,
    RewardFailure,
]


@pytest.mark.parametrize("error", USER_FACING, ids=lambda e: e.__name__)
def test_errors_written_for_callers_are_user_facing(error: type[Exception]) -> None:
    assert issubclass(error, UserFacingError) and issubclass(error, GenSearcherError)


def test_internal_errors_are_in_the_tree_but_not_user_facing() -> None:
    assert issubclass(EpisodeStateError, GenSearcherError) and not issubclass(EpisodeStateError, UserFacingError)


def test_builtin_bases_are_kept_for_existing_handlers() -> None:
    assert issubclass(InvalidRenderRequest, ValueError) and issubclass(FormatError, ValueError)
    assert issubclass(ImageNotFoundError, KeyError) and issubclass(CacheMissError, LookupError)
    assert str(ImageNotFoundError("img_0")) == "unknown image id: 'img_0'"


def test_describe_failure_shows_user_facing_text_and_hides_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    shown = BrowseError("offset 9 is past the end of the page (3 characters)")
    assert describe_failure(shown) == str(shown)
    assert describe_failure(ExceptionGroup("tasks", [ExceptionGroup("inner", [shown]), KeyError("x")])) == str(shown)
    secret = RuntimeError("postgres://user:hunter2@db")
    logger = logging.getLogger("tests.error_tree")
    with caplog.at_level(logging.ERROR, logger="tests.error_tree"):
        assert (
            describe_failure(secret, action="search", logger=logger) == "search failed: internal error (RuntimeError)"
        )
    assert describe_failure(ExceptionGroup("tasks", [secret])) == "internal error (RuntimeError)"
    assert [record.exc_info[1] for record in caplog.records if record.exc_info] == [secret]  # logged, with traceback


@pytest.mark.anyio
async def test_unknown_resources_answer_resource_not_found(tmp_path: Path) -> None:
    with run_tool_server(tmp_path, index=write_index(tmp_path)) as ts:
        async with Client(ts.url, mode="legacy") as client:  # initialize handshake: protocol 2025-11-25
            for uri in ("image://unknown", "image://img_0123456789abcdef"):
                with pytest.raises(MCPError) as raised:
                    await client.read_resource(uri)
                assert raised.value.code == RESOURCE_NOT_FOUND == -32002
                assert "unknown image id" in raised.value.message and raised.value.data == {"uri": uri}
        async with Client(ts.url) as client:  # protocol 2026-07-28
            with pytest.raises(MCPError) as raised:
                await client.read_resource("image://unknown")
            assert raised.value.code == -32602 and "unknown image id" in raised.value.message
            # The session survives: a tool call on it still answers.
            result = await client.call_tool("search", {"queries": ["eiffel tower"]})
            assert not result.is_error
