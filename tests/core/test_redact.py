"""The scrubber masks secrets, URL credentials and bearer tokens, on a capped length."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from pydantic import SecretStr

from gen_searcher_core.limits import MAX_MESSAGE_CHARS
from gen_searcher_core.redact import MASK, Redactor, redact_query

SECRET = "sk-live-0123456789abcdef"


def test_known_secrets_and_their_url_encoded_forms_are_masked() -> None:
    redact = Redactor([SecretStr(SECRET), "a+b/c=d&e", None, "abc"])
    text = f"invalid key {SECRET}; url https://x/?k={quote('a+b/c=d&e', safe='')}; short abc stays"
    out = redact(text)
    assert SECRET not in out and "a%2Bb%2Fc%3Dd%26e" not in out
    assert out.count(MASK) == 2 and "short abc stays" in out


def test_url_credentials_and_bearer_tokens_are_masked_without_knowing_them() -> None:
    redact = Redactor()
    out = redact("GET https://user:hunter2pass@example.com/x failed; sent Authorization: Bearer abcdEFGH1234.xyz")
    assert "hunter2pass" not in out and "user:" not in out and f"https://{MASK}@example.com/x" in out
    assert "abcdEFGH1234" not in out and f"Bearer {MASK}" in out


def test_a_long_scheme_still_has_its_credentials_masked() -> None:
    out = Redactor()("x" * 100 + "://user:pw-secret@host/")
    assert "pw-secret" not in out and f"://{MASK}@host/" in out


@pytest.mark.parametrize("filler", ["a", "a:", "https://", "bearer ", " ", "a://b"])
def test_huge_hostile_text_is_scrubbed_and_cut(filler: str) -> None:
    """1,000,000 characters of the shapes that made the old patterns quadratic come back cut and scrubbed."""
    redact = Redactor([SECRET])
    text = "Unknown tool: " + filler * (1_000_000 // len(filler)) + f" https://u:{SECRET}@h/ Bearer tok-12345678"
    out = redact(text)
    assert len(out) < MAX_MESSAGE_CHARS + 100
    assert out.endswith(f"[cut: {len(text)} characters in all]")
    assert SECRET not in out


def test_a_secret_straddling_the_cut_is_masked_whole() -> None:
    redact = Redactor([SECRET])
    for offset in range(-len(SECRET), len(SECRET) + 1, 3):
        for size in (100, 5000):  # the cut inside the window, and the window's own end
            prefix = "p" * (size + offset)
            text = prefix + SECRET + "q" * 10_000
            out = redact(text, max_chars=size)
            for cut in range(4, len(SECRET) + 1):  # no piece of the secret survives either
                assert SECRET[:cut] not in out, (size, offset, cut)


def test_a_secret_straddling_the_window_end_is_dropped() -> None:
    """Past the scrubbed window a secret may be cut in two; the kept text never holds a piece of it."""
    redact = Redactor([SECRET])
    many = (SECRET + " ") * 200  # masks shorten what comes before the window's end
    for pad in range(40):
        text = many + "z" * pad + SECRET * 3 + "y" * 100_000
        out = redact(text, max_chars=len(many))
        assert "sk-l" not in out, pad


def test_short_text_is_unchanged_apart_from_masks() -> None:
    assert Redactor([SECRET])(f"plain message about {SECRET}") == f"plain message about {MASK}"
    assert Redactor()("x" * MAX_MESSAGE_CHARS) == "x" * MAX_MESSAGE_CHARS


def test_query_values_are_masked_in_access_log_targets() -> None:
    assert redact_query("/healthz?token=abc&x=1") == f"/healthz?token={MASK}&x={MASK}"
    assert redact_query("/plain") == "/plain"
