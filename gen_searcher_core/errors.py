"""One error tree for the project.

``GenSearcherError`` is the root. ``UserFacingError`` marks errors whose message
is safe to show a user or a model verbatim (no secrets, no internals): tools put
it in their result, commands print it as one line. Anything else is an internal
error and is reported by type only.
"""

from __future__ import annotations

import logging


class GenSearcherError(Exception):
    """Root of every error the project raises on purpose."""


class UserFacingError(GenSearcherError):
    """An error whose message is written for the user or model that caused it."""


class ConfigError(UserFacingError):
    """The settings are incomplete or contradictory; the message names the setting."""


def first_leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside (nested) exception groups; ``exc`` itself otherwise."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_failure(exc: BaseException, *, action: str | None = None, logger: logging.Logger | None = None) -> str:
    """A message safe to show for ``exc``: the text of a user-facing error, else only its type.

    Exception groups are looked through (their first leaf decides). An internal error reads
    ``internal error (KeyError)``, or ``{action} failed: internal error (KeyError)`` when ``action``
    names what failed; ``logger`` records it with its traceback (it is a bug, not the caller's fault).
    """
    leaf = first_leaf(exc)
    if isinstance(leaf, UserFacingError):
        return str(leaf)
    if logger is not None:
        logger.error("%s failed unexpectedly", action or "the request", exc_info=leaf)
    internal = f"internal error ({type(leaf).__name__})"
    return f"{action} failed: {internal}" if action else internal
