"""The one scrubber: secrets out of every message that crosses a trust boundary.

Error messages often quote a remote service ("invalid key sk-…"), a URL with
credentials or a query token. :class:`Redactor` replaces each known secret (and
its URL-encoded form) with ``***``, plus credentials in URLs and bearer tokens
it does not know. The tool server scrubs every tool error through one, the
render server every error answer, and access logs lose query values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter "secrets" would mask ordinary words
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
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

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
        return _BEARER.sub(lambda m: f"{m[1]} {MASK}", text)


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
