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
from typing import Any, ClassVar, Self

from pydantic import BaseModel
from pydantic.fields import FieldInfo
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


class FlatSectionEnv(PydanticBaseSettingsSource):
    """``GEN_SEARCHER_<SECTION>_<KEY>`` (one underscore) for the sections a root lists in ``flat_env_sections``.

    Some sections were documented with one underscore before the ``__`` style
    (``GEN_SEARCHER_JUDGE_MODEL``, ``GEN_SEARCHER_POLICY_API_KEY``); they keep
    those names, and the ``__`` spelling works for them too (it wins when both are set).
    """

    def __init__(self, settings_cls: type[BaseSettings], sections: tuple[str, ...], prefix: str = "GEN_SEARCHER_"):
        super().__init__(settings_cls)
        self.sections = sections
        self.prefix = prefix

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads whole sections

    def __call__(self) -> dict[str, Any]:
        environ = {name.upper(): value for name, value in os.environ.items()}
        found: dict[str, Any] = {}
        for section in self.sections:
            model = self.settings_cls.model_fields[section].annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"flat_env_sections: {section!r} is not a section model")
            values = {
                key: environ[name]
                for key in model.model_fields
                if (name := f"{self.prefix}{section}_{key}".upper()) in environ
            }
            if values:
                found[section] = values
        return found


class ConfigRoot(BaseSettings):
    """Base of every settings root: ``GEN_SEARCHER_`` prefix, ``__`` between section and key.

    ``flat_env_sections`` names sections whose keys are also read from
    ``GEN_SEARCHER_<SECTION>_<KEY>`` (see :class:`FlatSectionEnv`).
    """

    flat_env_sections: ClassVar[tuple[str, ...]] = ()

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
        if not cls.flat_env_sections:
            return (env_settings, init_settings)
        return (env_settings, FlatSectionEnv(settings_cls, cls.flat_env_sections), init_settings)

    @classmethod
    def load(cls, config_file: Path | str | None = None, **overrides: Any) -> Self:
        """Settings from an optional TOML file (or ``$GEN_SEARCHER_CONFIG``) plus the environment.

        ``overrides`` are merged over the file's values (per section) and, like the
        file, lose to environment variables. Unknown keys and ``GEN_SEARCHER_`` variables are
        refused or warned about (see :mod:`gen_searcher_core.settings_check`).
        """
        from gen_searcher_core.settings_check import check_settings

        data = read_config_file(config_file)
        check_settings(data, str(config_file or os.environ.get(CONFIG_ENV) or "the settings file"), root=cls)
        return cls(**merge_sections(data, overrides))
