"""The one scrubber: secrets out of every message that crosses a trust boundary.

Error messages often quote a remote service ("invalid key sk-…"), a URL with
credentials or a query token. :class:`Redactor` replaces each known secret (and
its URL-encoded form) with ``***``, plus credentials in URLs and bearer tokens
it does not know. The tool server scrubs every tool error through one, the
render server every error answer, and access logs lose query values.

Its input is untrusted (an error may quote a client's tool name or URI), so a
scrub costs time linear in a capped length: text past ``MAX_MESSAGE_CHARS`` is
cut (the cut is said), and every pattern has a bounded amount of work per
position (no unbounded run followed by a literal that may be missing).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

from gen_searcher_core.limits import MAX_MESSAGE_CHARS

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter "secrets" would mask ordinary words
# The scheme is bounded: an unbounded one made each letter of a long word start a scan to
# its end in search of "://" (quadratic: 80,000 letters took 5 s). A longer scheme still has
# its last 32 characters matched, so credentials after it are masked all the same. The
# userinfo scans stop at the next "/", which every later "://" holds, so they do not overlap.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,31}://)[^/\s:@]+(?::[^/\s@]*)?@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s{1,16}[A-Za-z0-9._~+/=-]{8,}")
#: Scrubbed past the cut, so a secret or URL credential that straddles it is masked whole first.
_CUT_MARGIN = 512
_QUERY_VALUE = re.compile(r"=[^&#\s]*")


class Redactor:
    """Masks the given secrets, URL credentials and bearer tokens in text."""

    def __init__(self, secrets: Iterable[str | SecretStr | None] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
            if not value or len(value) < MIN_SECRET_CHARS:
                continue
            forms.update({value, quote(value, safe=""), quote_plus(value)})
        # Longest first, so a secret that contains another is masked whole.
        self._forms = sorted(forms, key=len, reverse=True)
        self._margin = _CUT_MARGIN + (len(self._forms[0]) if self._forms else 0)

    def __call__(self, text: str, *, max_chars: int = MAX_MESSAGE_CHARS) -> str:
        """``text`` without secrets, cut to ``max_chars`` (plus a note of how much was cut)."""
        total = len(text)
        window = max_chars + self._margin
        text = text[:window]
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
        text = _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)
        if total <= max_chars:
            return text
        # A secret cut in two at the window's end escaped the masks: it lies in the last
        # ``margin`` characters of the scrubbed text (masks before it do not change that), which go.
        keep = min(max_chars, len(text) - self._margin if total > window else len(text))
        return text[:keep] + f"… [cut: {total} characters in all]"


def secrets_of(model: BaseModel) -> list[SecretStr]:
    """Every ``SecretStr`` in a settings tree (nested sections and lists included)."""
    found: list[SecretStr] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.append(value)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name, None))
        elif isinstance(value, (list, tuple, set)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    return found


def redact_query(target: str) -> str:
    """``/path?token=abc&x=1`` -> ``/path?token=***&x=***``: query values may be credentials."""
    path, sep, query = target.partition("?")
    return path + sep + _QUERY_VALUE.sub("=" + MASK, query) if sep else target


class AccessLogQueryFilter(logging.Filter):
    """For uvicorn's access log: masks query values in the logged request target."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True
