"""One builder for the tool server's settings in tests: everything it writes lives under a test folder.

``hermetic_settings(tmp_dir, **sections)`` starts from the cache file and the
image folder under ``tmp_dir`` and lays each section given over them (a dict
is merged into the section, anything else, such as ``searxng_url=...``, is set
as given). The areas' builders (``tool_server_settings``, the search tests'
``make_settings``, the browse tests' ``browse_settings``) add their defaults
through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp_server.settings import Settings, load_settings


def merged_sections(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with each override merged into its section (dicts) or set as given (other values)."""
    sections = dict(base)
    for key, value in overrides.items():
        current = sections.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            sections[key] = {**current, **value}
        else:
            sections[key] = value
    return sections


def hermetic_settings(tmp_dir: Path, **sections: Any) -> Settings:
    """Tool-server settings with the cache and images under ``tmp_dir`` and ``sections`` laid over them."""
    tmp_dir = Path(tmp_dir)
    base = {"cache": {"path": str(tmp_dir / "cache.db")}, "images": {"dir": str(tmp_dir / "images")}}
    return load_settings(**merged_sections(base, sections))
