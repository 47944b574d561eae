"""Validation of judge replies: each helper raises ``ValueError`` with a reason the repair turn can quote."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def require_keys(obj: Mapping[str, Any], keys: Iterable[str]) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"missing keys: {', '.join(missing)}")


def rationale(obj: Mapping[str, Any]) -> str:
    value = obj.get("rationale")
    return "" if value is None else str(value)


def as_bool(value: Any, key: str) -> bool:
    """``true``/``false`` as JSON booleans, strings or 0/1; ``ValueError`` otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    raise ValueError(f"{key} must be true or false, got {value!r}")


def as_score(value: Any, key: str, allowed: tuple[float, ...]) -> float:
    """One of ``allowed`` (numbers or numeric strings); ``ValueError`` naming ``key`` otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be one of {allowed}, got {value!r}") from None
    for option in allowed:
        if abs(number - option) < 1e-9:
            return option
    raise ValueError(f"{key} must be one of {allowed}, got {value!r}")
