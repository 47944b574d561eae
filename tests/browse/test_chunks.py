"""Splitting long text for the summarizer and slicing it for text-only browse (pure functions)."""

from __future__ import annotations

import pytest

from search_tools.browse import slice_text
from search_tools.summarize import chunk_spans, is_nothing, split_chunks
from tests.browse.content import long_text


@pytest.mark.parametrize("size", [50, 333, 1500, 100_000])
def test_chunk_spans_cover_the_text_exactly_within_the_limit(size: int) -> None:
    text = long_text(80) + " tail-without-spaces" * 40
    spans = chunk_spans(text, size)
    assert "".join(text[a:b] for a, b in spans) == text
    assert all(0 < b - a <= size for a, b in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_chunks_prefer_paragraph_ends() -> None:
    text = long_text(40)
    for chunk in split_chunks(text, 1000)[:-1]:
        assert chunk.endswith("storms.")  # every paragraph ends so


def test_slices_reassemble_and_cut_at_boundaries() -> None:
    text = long_text(50)
    pieces, offset = [], 0
    while offset is not None:
        piece, nxt = slice_text(text, offset, 700)
        assert len(piece) <= 700
        if nxt is not None:
            assert piece.endswith("\n\n")
        pieces.append(piece)
        offset = nxt
    assert "".join(pieces) == text


def test_nothing_relevant_marker() -> None:
    assert is_nothing("NOTHING_RELEVANT") and is_nothing(" nothing_relevant.")
    assert not is_nothing("The tower is 38 m tall.")
