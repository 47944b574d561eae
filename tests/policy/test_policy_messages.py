"""What ``gen-searcher run`` says when a tool fails: the tool's own words, and the baseline keeps them."""

from __future__ import annotations

import pytest
from rich.console import Console

from policy.baseline import BaselineModel
from policy.chat import ChatModelError
from policy.cli import _progress_printer

NETWORK_ERROR = "ddgs search failed (unavailable): could not reach any search engine (network error; ...)"


def test_a_failed_tool_shows_its_error_text() -> None:
    console = Console(record=True, width=400)
    show = _progress_printer(console)
    result = {"name": "image_search", "text": NETWORK_ERROR, "images": [], "is_error": True}
    show("tool_end", {"name": "image_search", "elapsed_s": 0.5, "result": result})
    assert f"image_search 0.50s error: {NETWORK_ERROR}" in console.export_text()


@pytest.mark.anyio
async def test_the_baseline_keeps_the_tool_error() -> None:
    messages = [
        {"role": "system", "content": "system"},
        {"role": "user", "content": "the Eiffel Tower"},
        {"role": "assistant", "content": "<tool_call>...</tool_call>"},
        {"role": "user", "content": [{"type": "text", "text": f"<tool_response>\n{NETWORK_ERROR}\n</tool_response>"}]},
    ]
    with pytest.raises(ChatModelError) as caught:
        await BaselineModel().chat(messages)
    assert "image search found no image" in str(caught.value)
    assert "could not reach any search engine" in str(caught.value)
