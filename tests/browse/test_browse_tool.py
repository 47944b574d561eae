"""The ``browse`` tool through a real MCP client session, with the guard on and a scripted summary model."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.browse import content
from tests.browse.conftest import Web, browse_settings, text_of, tool_client
from tests.support.loopback import serve_app

pytestmark = pytest.mark.anyio
API_KEY = "sk-test-secret-0123456789"


async def test_browse_returns_the_article_without_boilerplate(tmp_path: Path, web: Web) -> None:
    async with tool_client(browse_settings(tmp_path, web)) as client:
        result = await client.call_tool("browse", {"url": web.url("/article"), "goal": "when was it first lit"})
        assert not result.is_error, text_of(result)
        data = result.structured_content
        assert data["title"] == "The Bellmoor Lighthouse" and data["summarized"] is False
        assert data["url"] == web.url("/article") and data["offset"] == 0 and data["next_offset"] is None
        assert data["total_chars"] == len(data["content"])
        for snippet in content.ARTICLE_KEEP:
            assert snippet in data["content"] and snippet in text_of(result)
        for snippet in content.ARTICLE_DROP:
            assert snippet not in data["content"]


async def test_long_pages_continue_from_next_offset(tmp_path: Path, web: Web) -> None:
    async with tool_client(browse_settings(tmp_path, web)) as client:
        pieces: list[str] = []
        offset: int | None = 0
        calls = 0
        while offset is not None:
            result = await client.call_tool("browse", {"url": web.url("/long"), "goal": "ships", "offset": offset})
            assert not result.is_error, text_of(result)
            data = result.structured_content
            assert data["offset"] == offset and len(data["content"]) <= 1500
            if data["next_offset"] is not None:
                assert f"offset={data['next_offset']}" in text_of(result)
            pieces.append(data["content"])
            offset = data["next_offset"]
            calls += 1
        total = data["total_chars"]
        assert calls > 2 and len("".join(pieces)) == total
        whole = "".join(pieces)
        assert whole.startswith("# Harbour records") and "Paragraph 59:" in whole
        past = await client.call_tool("browse", {"url": web.url("/long"), "goal": "ships", "offset": total + 5})
        assert past.is_error and "past the end" in text_of(past)


async def test_results_are_cached(tmp_path: Path, web: Web) -> None:
    async with tool_client(browse_settings(tmp_path, web)) as client:
        before = web.hits["/tides.txt"]
        first = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "high water"})
        second = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "high water"})
        other_goal = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "low water"})
        assert first.structured_content == second.structured_content
        assert "High water 06:12" in other_goal.structured_content["content"]
        assert web.hits["/tides.txt"] - before == 1  # one fetch; the page is cached for other goals too


async def test_a_page_cached_under_a_looser_guard_is_not_served_under_a_stricter_one(tmp_path: Path, web: Web) -> None:
    by_name = f"http://localhost:{web.port}/article"  # the guard refuses the name; only 127.0.0.1:PORT is excepted
    loose = browse_settings(tmp_path, web, fetch={"allow_private_networks": True, "respect_robots": False})
    async with tool_client(loose) as client:
        for url in (by_name, web.url("/private/page")):
            opened = await client.call_tool("browse", {"url": url, "goal": "keepers"})
            assert not opened.is_error, text_of(opened)
    async with tool_client(browse_settings(tmp_path, web)) as client:  # same cache file, guard and robots back on
        refused = await client.call_tool("browse", {"url": by_name, "goal": "keepers"})
        assert refused.is_error and "refused: localhost is a local host name" in text_of(refused)
        disallowed = await client.call_tool("browse", {"url": web.url("/private/page"), "goal": "keepers"})
        assert disallowed.is_error and "robots.txt" in text_of(disallowed)


async def test_pdf_and_text(tmp_path: Path, web: Web) -> None:
    async with tool_client(browse_settings(tmp_path, web)) as client:
        pdf = await client.call_tool("browse", {"url": web.url("/log.pdf"), "goal": "weather"})
        assert not pdf.is_error and "Fog from dawn" in pdf.structured_content["content"]
        text = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "tides"})
        assert text.structured_content["content"].startswith("Tide table for Bellmoor.")


async def test_every_failure_is_a_clear_tool_error_and_the_server_keeps_serving(tmp_path: Path, web: Web) -> None:
    port = web.internal_base.rsplit(":", 1)[1]
    cases = {
        f"http://127.0.0.1:{port}/secret": "refused",
        f"http://2130706433:{port}/secret": "refused",
        f"http://0177.0.0.1:{port}/secret": "invalid",
        f"http://0x7f.1:{port}/secret": "refused",
        f"http://[::1]:{port}/secret": "loopback",
        f"http://[::ffff:127.0.0.1]:{port}/secret": "IPv4-mapped",
        f"http://localhost:{port}/secret": "local host name",
        "http://169.254.169.254/latest/meta-data/": "metadata",
        "http://metadata.google.internal/": "metadata",
        web.url("/redirect?to=" + quote(f"http://127.0.0.1:{port}/secret", safe="")): "redirect from",
        web.url("/chain/9"): "more than 5 redirects",
        web.url("/private/page"): "robots.txt",
        web.url("/slow"): "timed out",
        web.url("/big"): "larger than the limit",
        web.url("/huge"): "over the limit",
        web.url("/clip.mp4"): "video/mp4",
        web.url("/archive.zip"): "application/zip",
        web.url("/untyped"): "application/octet-stream",
        web.url("/status/404"): "HTTP 404",
        web.url("/status/502"): "HTTP 502",
        "ftp://example.com/file": "only http and https",
        "javascript:alert(1)": "only http and https",
        "": "url is empty",
    }
    before = sum(web.internal_hits.values())
    async with tool_client(browse_settings(tmp_path, web, fetch={"timeout_s": 5.0})) as client:
        for url, expected in cases.items():
            result = await client.call_tool("browse", {"url": url, "goal": "anything"})
            message = text_of(result)
            assert result.is_error, url
            assert message.startswith("browse failed:") and expected in message, (url, message)
            assert result.structured_content is None  # no error text posing as a page
            ok = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "tides"})
            assert not ok.is_error
        bad = await client.call_tool("browse", {"url": web.url("/article"), "goal": "x", "offset": -1})
        assert bad.is_error
    assert sum(web.internal_hits.values()) == before


# -- goal-directed summaries over a scripted OpenAI-compatible server --------------------------------


class ScriptedChat:
    """Speaks POST /v1/chat/completions; answers notes per chunk, merges notes, or says nothing is relevant."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_with: int | None = None
        # Requests hold until this many were in flight at once (10 s at most): overlap by design, not by timing.
        self.expect_overlap = 1

    def app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
            if self.fail_with:
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=self.fail_with)
            body = await request.json()
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.expect_overlap > 1:
                    for _ in range(500):
                        if self.max_in_flight >= self.expect_overlap:
                            break
                        await asyncio.sleep(0.02)
                else:
                    await asyncio.sleep(0.2)
            finally:
                self.in_flight -= 1
            system, user = body["messages"][0]["content"], body["messages"][1]["content"]
            goal = user.split("\n", 1)[0]
            if "merge" in system.lower():
                notes = re.findall(r"NOTE[^\n]*", user)
                answer = "MERGED: " + " | ".join(notes)
            elif "volcano" in goal:
                answer = "NOTHING_RELEVANT"
            else:
                part = re.search(r"\(part (\d+) of (\d+)\)", user)
                first = re.search(r"Paragraph (\d+)", user)
                label = part.group(1) if part else "1"
                answer = f"NOTE {label}: from paragraph {first.group(1) if first else '-'}"
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def summary_settings(tmp_path: Path, web: Web, chat_base: str) -> Any:
    return browse_settings(
        tmp_path,
        web,
        summary={
            "base_url": chat_base + "/v1",
            "model": "scripted",
            "api_key": API_KEY,
            "chunk_chars": 1500,
            "max_concurrency": 3,
        },
    )


async def test_long_pages_are_summarized_in_concurrent_chunks_then_merged(tmp_path: Path, web: Web) -> None:
    chat = ScriptedChat()
    chat.expect_overlap = 3  # max_concurrency: the chunk summaries are asked for together
    with serve_app(chat.app()) as chat_base:
        async with tool_client(summary_settings(tmp_path, web, chat_base)) as client:
            result = await client.call_tool("browse", {"url": web.url("/long"), "goal": "how many ships"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    chunk_calls = [r for r in chat.requests if "merge" not in r["messages"][0]["content"].lower()]
    merge_calls = [r for r in chat.requests if "merge" in r["messages"][0]["content"].lower()]
    assert len(chunk_calls) >= 3 and len(merge_calls) == 1
    assert 2 <= chat.max_in_flight <= 3  # concurrent, and bounded by max_concurrency
    assert data["summarized"] is True and data["next_offset"] is None
    assert data["content"].startswith("MERGED: NOTE 1: from paragraph 0")
    assert data["content"].count("NOTE") == len(chunk_calls)  # every chunk's notes reached the merge
    assert all(r["model"] == "scripted" for r in chat.requests)
    assert all("how many ships" in r["messages"][1]["content"] for r in chat.requests)


async def test_a_page_with_nothing_relevant_says_so(tmp_path: Path, web: Web) -> None:
    chat = ScriptedChat()
    with serve_app(chat.app()) as chat_base:
        async with tool_client(summary_settings(tmp_path, web, chat_base)) as client:
            result = await client.call_tool("browse", {"url": web.url("/article"), "goal": "volcano eruptions"})
    assert not result.is_error
    assert result.structured_content["content"] == "The page contains nothing relevant to the goal: volcano eruptions"
    assert len(chat.requests) == 1  # a short page is one chunk: no merge call


async def test_summary_model_failures_are_clear_and_never_show_the_key(tmp_path: Path, web: Web) -> None:
    chat = ScriptedChat()
    chat.fail_with = 503
    with serve_app(chat.app()) as chat_base:
        async with tool_client(summary_settings(tmp_path, web, chat_base)) as client:
            result = await client.call_tool("browse", {"url": web.url("/article"), "goal": "history"})
            assert result.is_error and "summary model answered HTTP 503" in text_of(result)
            assert API_KEY not in text_of(result)
            chat.fail_with = None
            ok = await client.call_tool("browse", {"url": web.url("/article"), "goal": "history"})
            assert not ok.is_error and ok.structured_content["content"].startswith("NOTE 1")


async def test_summaries_cover_a_bounded_window_and_continue_from_next_offset(tmp_path: Path, web: Web) -> None:
    chat = ScriptedChat()
    with serve_app(chat.app()) as chat_base:
        settings = summary_settings(tmp_path, web, chat_base)
        settings.summary.max_chunks = 2
        async with tool_client(settings) as client:
            first = await client.call_tool("browse", {"url": web.url("/long"), "goal": "ships"})
            data = first.structured_content
            assert data["summarized"] and data["next_offset"] is not None and data["next_offset"] <= 3000
            assert f"offset={data['next_offset']}" in text_of(first)
            assert len(chat.requests) == 3  # two chunks and one merge, not the whole page
            second = await client.call_tool(
                "browse", {"url": web.url("/long"), "goal": "ships", "offset": data["next_offset"]}
            )
            assert not second.is_error and second.structured_content["offset"] == data["next_offset"]
            first_paragraph = int(re.search(r"paragraph (\d+)", second.structured_content["content"]).group(1))
            assert first_paragraph > 0  # the second window starts where the first ended


async def test_replay_mode_serves_recorded_pages_and_never_fetches(tmp_path: Path, web: Web) -> None:
    async with tool_client(browse_settings(tmp_path, web)) as client:
        recorded = await client.call_tool("browse", {"url": web.url("/article"), "goal": "keepers"})
        assert not recorded.is_error
    before = (web.hits["/article"], web.hits["/tides.txt"])
    async with tool_client(browse_settings(tmp_path, web, cache={"mode": "replay"})) as client:
        replayed = await client.call_tool("browse", {"url": web.url("/article"), "goal": "keepers"})
        assert replayed.structured_content == recorded.structured_content
        missing = await client.call_tool("browse", {"url": web.url("/tides.txt"), "goal": "tides"})
        assert missing.is_error and "replay" in text_of(missing)
    assert (web.hits["/article"], web.hits["/tides.txt"]) == before


async def test_configured_from_the_environment_as_documented(
    tmp_path: Path, web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS lifts the guard; the summary key falls back to OPENAI_API_KEY."""
    by_name = {"url": f"http://localhost:{web.port}/article", "goal": "when was it first lit"}
    async with tool_client(browse_settings(tmp_path, web)) as client:
        refused = await client.call_tool("browse", by_name)
        assert refused.is_error and "refused: localhost is a local host name" in text_of(refused)
    chat = ScriptedChat()
    with serve_app(chat.app()) as chat_base:
        monkeypatch.setenv("GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS", "true")
        monkeypatch.setenv("GEN_SEARCHER_SUMMARY__BASE_URL", chat_base + "/v1")
        monkeypatch.setenv("GEN_SEARCHER_SUMMARY__MODEL", "scripted")
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        async with tool_client(browse_settings(tmp_path / "env", web)) as client:
            result = await client.call_tool("browse", by_name)
    assert not result.is_error, text_of(result)
    assert result.structured_content["summarized"] is True
    assert result.structured_content["content"].startswith("NOTE 1")  # the scripted model accepted the key
    assert len(chat.requests) == 1
