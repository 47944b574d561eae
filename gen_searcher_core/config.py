"""Settings loading shared by every area: defaults < TOML file < ``GEN_SEARCHER_<SECTION>__<KEY>``.

Each area declares its own sections (pydantic models) and, where it has a
command of its own, a root that subclasses :class:`ConfigRoot` with the sections
it reads. Every root reads the same TOML file and environment, so one
``--config`` file configures the whole project.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Self

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "GEN_SEARCHER_CONFIG"


def read_config_file(config_file: Path | str | None = None) -> dict[str, Any]:
    """The TOML file named by ``config_file`` or ``$GEN_SEARCHER_CONFIG``; empty when neither is set."""
    path = config_file or os.environ.get(CONFIG_ENV)
    if not path:
        return {}
    config_path = Path(path)
    if not config_path.is_file():
        raise FileNotFoundError(f"config file not found: {config_path}")
    with config_path.open("rb") as fh:
        return tomllib.load(fh)


def merge_sections(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` over ``data``, merging one level deep (per section)."""
    merged = dict(data)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


class ConfigRoot(BaseSettings):
    """Base of every settings root: ``GEN_SEARCHER_`` prefix, ``__`` between section and key."""

    model_config = SettingsConfigDict(
        env_prefix="GEN_SEARCHER_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs (see load); the environment wins over it.
        return (env_settings, init_settings)

    @classmethod
    def load(cls, config_file: Path | str | None = None, **overrides: Any) -> Self:
        """Settings from an optional TOML file (or ``$GEN_SEARCHER_CONFIG``) plus the environment.

        ``overrides`` are merged over the file's values (per section) and, like the
        file, lose to environment variables.
        """
        return cls(**merge_sections(read_config_file(config_file), overrides))
