"""Cutting long page text into pieces that end at a paragraph, line or word break."""

from __future__ import annotations

BREAKS = ("\n\n", "\n", " ")


def break_before(text: str, limit: int, floor: int) -> int:
    """Where a piece that may run up to ``limit`` should end: just after the last paragraph break
    in ``text[floor:limit]``, else the last line break, else the last space; ``limit`` when there is none."""
    for separator in BREAKS:
        cut = text.rfind(separator, floor, limit)
        if cut != -1:
            return cut + len(separator)
    return limit
