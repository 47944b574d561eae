"""One settings tree for every part of Gen-Searcher.

Precedence, highest first: environment (``GEN_SEARCHER_<SECTION>__<KEY>``),
the TOML file given by ``--config`` or ``GEN_SEARCHER_CONFIG``, then defaults.
Provider keys are read from their customary variables (``SERPER_API_KEY``,
``BRAVE_API_KEY``, ``SEARXNG_URL``, ``OPENAI_API_KEY``) and are held as
``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

USER_AGENT = "Gen-Searcher/0.1 (+https://github.com/gen-searcher/gen-searcher; search-grounded image generation bot)"


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("gen-searcher"))


class SearchSettings(BaseModel):
    backend: str = Field("auto", description="auto | serper | searxng | brave | ddgs | local | a plugin's name")
    index: Path | None = Field(None, description="SQLite FTS5 index file of the local backend")
    timeout_s: float = 15.0
    rate_limit_per_s: float = Field(10.0, description="provider calls per second per backend")
    max_retries: int = 3
    retry_backoff_s: float = Field(0.5, description="first retry delay; doubles per retry (with jitter)")
    retry_after_max_s: float = Field(30.0, description="longest provider Retry-After honoured; longer fails at once")
    serper_url: str = "https://google.serper.dev"
    brave_url: str = "https://api.search.brave.com/res/v1"

    @field_validator("index", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # GEN_SEARCHER_SEARCH__INDEX= (empty) means no index, not the current folder.
        return None if isinstance(value, str) and not value.strip() else value


class CacheSettings(BaseModel):
    path: Path = Field(default_factory=lambda: _default_cache_dir() / "cache.db")
    url: str | None = Field(None, description="redis://host:port/db to share one cache among servers")
    ttl_s: int = 7 * 24 * 3600
    mode: Literal["readwrite", "readonly", "replay", "off"] = "readwrite"


class FetchSettings(BaseModel):
    allow_private_networks: bool = False
    max_bytes: int = 5 * 1024 * 1024
    timeout_s: float = 20.0
    max_redirects: int = 5
    respect_robots: bool = True
    per_host_concurrency: int = 4
    user_agent: str = USER_AGENT
    allowed_addresses: list[str] = Field(
        default_factory=list,
        description="internal networks reachable despite the guard: '10.1.2.0/24', '127.0.0.1:8080', '[::1]:8080'",
    )
    robots_ttl_s: float = 3600.0


class SummarySettings(BaseModel):
    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    chunk_chars: int = 12_000
    max_chunks: int = Field(8, description="chunks summarized per browse call; longer pages continue via next_offset")
    max_concurrency: int = 8
    text_budget: int = Field(8_000, description="characters returned per browse call without a summary model")
    timeout_s: float = 120.0


class ImageSettings(BaseModel):
    dir: Path = Field(default_factory=lambda: _default_cache_dir() / "images")
    max_total_bytes: int = 2 * 1024**3
    max_pixels: int = 40_000_000
    min_side: int = 64
    thumbnail_side: int = 512


class RenderSettings(BaseModel):
    backend: Literal["none", "diffusers", "http", "openai"] = "none"
    model: str | None = Field(None, description="Qwen-Image id or folder (diffusers: text-only; openai: model name)")
    edit_model: str | None = Field(None, description="Qwen-Image-Edit-2509 id or folder (renders with references)")
    url: str | None = Field(None, description="render server (http) or images API base URL (openai, e.g. .../v1)")
    api_key: SecretStr | None = None
    device: str | None = Field(None, description="diffusers device; default cuda when present, else cpu")
    timeout_s: float = 600.0
    dtype: str | None = Field(None, description="bfloat16 | float16 | float32; default bf16 on GPU, fp32 on CPU")
    lora: str | None = Field(None, description="LoRA for the text-only model (folder, id or .safetensors)")
    edit_lora: str | None = Field(None, description="LoRA for the edit model (e.g. a Lightning LoRA)")
    lora_scale: float = 1.0
    compile: bool = Field(False, description="torch.compile the transformer blocks")
    cpu_offload: bool = Field(False, description="model CPU offload for small GPUs")
    steps: int | None = Field(None, description="render tool default steps; none: 50 text-only, 40 edit")
    true_cfg_scale: float = 4.0
    openai_extra_params: bool = Field(False, description="send seed/steps/CFG to the images API (our server)")


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    stateless: bool = Field(False, description="streamable HTTP without sessions (replicas behind a load balancer)")
    json_response: bool = Field(False, description="streamable HTTP answers plain JSON instead of an SSE stream")
    log_level: str = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GEN_SEARCHER_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    summary: SummarySettings = Field(default_factory=SummarySettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)

    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    serper_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("SERPER_API_KEY", "serper_api_key"))
    brave_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("BRAVE_API_KEY", "brave_api_key"))
    # A secret too: an instance URL may carry credentials (https://user:password@host).
    searxng_url: SecretStr | None = Field(None, validation_alias=AliasChoices("SEARXNG_URL", "searxng_url"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))

    @field_validator("auth_tokens", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs (see load_settings); environment wins over it.
        return (env_settings, init_settings)

    def summary_api_key(self) -> SecretStr | None:
        return self.summary.api_key or self.openai_api_key


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file (or ``GEN_SEARCHER_CONFIG``) plus the environment.

    ``overrides`` are merged over the file's values (per section) and, like the
    file, lose to environment variables.
    """
    path = config_file or os.environ.get("GEN_SEARCHER_CONFIG")
    data: dict[str, Any] = {}
    if path:
        config_path = Path(path)
        if not config_path.is_file():
            raise FileNotFoundError(f"config file not found: {config_path}")
        with config_path.open("rb") as fh:
            data = tomllib.load(fh)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings(**data)
