"""The tool-result memo: entries expire, and the total stays within its byte bound."""

from __future__ import annotations

from mcp_server.tools.memo import ResultMemo


def test_entries_expire_after_their_time() -> None:
    now = [0.0]
    memo: ResultMemo[str] = ResultMemo(ttl_s=10, max_bytes=100, clock=lambda: now[0])
    memo.put("q", "answer", 6)
    now[0] = 9.9
    assert memo.get("q") == "answer"
    now[0] = 10.0
    assert memo.get("q") is None and memo.bytes == 0


def test_least_recently_used_entries_go_first_to_stay_within_bytes() -> None:
    memo: ResultMemo[str] = ResultMemo(ttl_s=60, max_bytes=100)
    memo.put("a", "A", 40)
    memo.put("b", "B", 40)
    assert memo.get("a") == "A"  # now "b" is the least recently used
    memo.put("c", "C", 40)
    assert memo.get("b") is None and memo.get("a") == "A" and memo.get("c") == "C"
    assert memo.bytes == 80
    memo.put("huge", "H", 101)  # larger than the bound: not kept, nothing evicted for it
    assert memo.get("huge") is None and memo.bytes == 80
    memo.put("a", "A2", 10)  # replacing an entry counts its new size
    assert memo.get("a") == "A2" and memo.bytes == 50
