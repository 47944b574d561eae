"""One request with megabyte strings costs a length check: the server keeps answering meanwhile.

A 1,000,000-character tool name used to pin the server's CPU in the error
scrubber (a quadratic pattern) for minutes, with ``/healthz`` unanswered. Here
megabyte names, URIs and arguments go to ``gen-searcher serve`` (a child
process, so a stuck server fails the test instead of freezing it) from one
thread while another polls ``/healthz`` with a 1 s limit: a generous liveness
bound, not a speed test.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx

from gen_searcher_core.limits import MAX_NAME_CHARS, MAX_URI_CHARS
from tests.server.raw_mcp import call, open_session
from tests.server.served import served

MB = 1_000_000
LIVENESS_S = 1.0

#: (method, params, what the error must name; None: served)
HUGE_REQUESTS: list[tuple[str, dict[str, Any], str | None]] = [
    ("tools/call", {"name": "t" * MB, "arguments": {}}, "params.name"),
    ("tools/call", {"name": "search" + "://" * (MB // 3), "arguments": {}}, "params.name"),
    ("resources/read", {"uri": "image://img_" + "a" * MB}, "params.uri"),
    ("resources/read", {"uri": "file:///" + "a" * MB}, "params.uri"),
    ("prompts/get", {"name": "p" * MB}, "params.name"),
    ("tools/call", {"name": "search", "arguments": {"queries": ["q" * MB]}}, "queries[0]"),
    ("tools/call", {"name": "search", "arguments": {"k" * MB: 1, "queries": ["x"]}}, None),  # ignored, as the SDK does
    ("tools/call", {"name": "browse", "arguments": {"url": "https://" + "a" * MB, "goal": "g"}}, "url"),
    ("tools/call", {"name": "browse", "arguments": {"url": "https://example.com/", "goal": "g" * MB}}, "goal"),
    ("tools/call", {"name": "image_search", "arguments": {"query": "bearer " * (MB // 7)}}, "query"),
]


def _message(answer: dict[str, Any]) -> str:
    if "error" in answer:
        return str(answer["error"]["message"])
    result = answer["result"]
    assert result.get("isError"), answer
    return " ".join(block.get("text", "") for block in result["content"])


def test_megabyte_names_uris_and_arguments_leave_healthz_answering(tmp_path: Path, index_db: Path) -> None:
    with served(tmp_path, index_db) as base, httpx.Client(timeout=120) as sender:
        url = base + "/mcp"
        session = open_session(sender, url)
        answers: list[Any] = []
        failures: list[BaseException] = []

        def send_all() -> None:
            try:
                for _round in range(2):
                    for method, params, _ in HUGE_REQUESTS:
                        answers.append(call(sender, url, session, method, params, request_id=len(answers) + 1))
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                failures.append(exc)

        thread = threading.Thread(target=send_all, daemon=True)
        polls = 0
        with httpx.Client(timeout=LIVENESS_S) as probe:
            thread.start()
            while thread.is_alive() or polls < 3:
                # A timeout here (httpx.TimeoutException) is the failure this test exists for.
                assert probe.get(base + "/healthz").status_code == 200
                polls += 1
        thread.join()
        assert not failures, failures
        assert len(answers) == 2 * len(HUGE_REQUESTS)
        for answer, (method, _params, named) in zip(answers, HUGE_REQUESTS * 2, strict=True):
            if named is None:
                assert not answer["result"].get("isError"), answer
                continue
            message = _message(answer)
            assert named in message, (method, message[:300])
            assert len(message) < 10_000, (method, len(message))
        # Within the limits, the same requests are served as before.
        ok = call(sender, url, session, "tools/call", {"name": "search", "arguments": {"queries": ["eiffel"]}})
        assert not ok["result"].get("isError"), ok
        exact = call(sender, url, session, "tools/call", {"name": "n" * MAX_NAME_CHARS, "arguments": {}})
        assert "Unknown tool" in _message(exact)
        uri = "image://img_" + "0" * (MAX_URI_CHARS - len("image://img_"))
        assert "params.uri" not in str(call(sender, url, session, "resources/read", {"uri": uri}))
