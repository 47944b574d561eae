"""The tool server's settings tree, composed from the sections each area owns.

Precedence, highest first: environment (``GEN_SEARCHER_<SECTION>__<KEY>``),
the TOML file given by ``--config`` or ``GEN_SEARCHER_CONFIG``, then defaults.
Provider keys are read from their customary variables (``SERPER_API_KEY``,
``BRAVE_API_KEY``, ``SEARXNG_URL``, ``OPENAI_API_KEY``, ``JINA_API_KEY``) and are held as
``SecretStr`` so they never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from gen_searcher_core.config import ConfigRoot
from render_tools.settings import RenderSettings
from search_tools.settings import (
    USER_AGENT,
    BackendConfig,
    CacheSettings,
    FetchSettings,
    ImageSettings,
    ProviderKeys,
    SearchSettings,
    SummarySettings,
)

__all__ = [
    "USER_AGENT",
    "CacheSettings",
    "FetchSettings",
    "ImageSettings",
    "RenderSettings",
    "SearchSettings",
    "ServerSettings",
    "Settings",
    "SummarySettings",
    "load_settings",
]


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="bind address of the HTTP transports")
    port: int = Field(8000, description="port of the HTTP transports")
    stateless: bool = Field(False, description="streamable HTTP without sessions (replicas behind a load balancer)")
    json_response: bool = Field(False, description="streamable HTTP answers plain JSON instead of an SSE stream")
    log_level: str = Field("INFO", description="DEBUG | INFO | WARNING | ERROR")
    session_idle_timeout_s: float = Field(
        600.0, gt=0, description="a stateful session idle this long is closed (its client re-initializes)"
    )
    max_sessions: int = Field(1000, gt=0, description="open stateful sessions at most; more get HTTP 503")
    max_sessions_per_client: int = Field(
        100,
        gt=0,
        description="open stateful sessions of one client (its bearer token, else its address) at most; "
        "past it the client's longest-idle session is closed, or HTTP 503 when all are busy",
    )
    request_deadline_s: float = Field(
        900.0,
        gt=0,
        description="time limit of one JSON-RPC request, whatever the method or tool (above render.timeout_s); "
        "past it the request is answered with an error and its work cancelled",
    )
    idle_connection_timeout_s: float = Field(
        5.0, gt=0, description="an HTTP connection that sends no request for this long is closed"
    )


class Settings(ConfigRoot):
    server: ServerSettings = Field(default_factory=ServerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    summary: SummarySettings = Field(default_factory=SummarySettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)

    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="bearer tokens accepted by the HTTP transports (comma-separated)"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host/Origin values accepted besides loopback (comma-separated)"
    )

    serper_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SERPER_API_KEY", "serper_api_key"), description="key of the serper backend"
    )
    brave_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("BRAVE_API_KEY", "brave_api_key"), description="key of the brave backend"
    )
    # A secret too: an instance URL may carry credentials (https://user:password@host).
    searxng_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SEARXNG_URL", "searxng_url"),
        description="instance of the searxng backend (with json in search.formats); credentials become Basic auth",
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"),
        description="fallback key of every OpenAI-compatible service (summary model, images API, judge, policy)",
    )
    # The jina fetcher's key (fetch.backend = "jina"); optional, the reader also serves anonymous requests.
    jina_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("JINA_API_KEY", "jina_api_key"),
        description="key of the jina fetcher (optional: the reader also serves anonymous requests)",
    )

    @field_validator("auth_tokens", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def summary_api_key(self) -> SecretStr | None:
        """The summary model's key: its own, else ``OPENAI_API_KEY``."""
        return self.summary.api_key or self.openai_api_key

    def provider_keys(self) -> ProviderKeys:
        return ProviderKeys(
            serper_api_key=self.serper_api_key, brave_api_key=self.brave_api_key, searxng_url=self.searxng_url
        )

    def backend_config(self) -> BackendConfig:
        """What the search backend factory needs from this tree."""
        return BackendConfig(search=self.search, keys=self.provider_keys(), user_agent=self.fetch.user_agent)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file (or ``GEN_SEARCHER_CONFIG``) plus the environment.

    ``overrides`` are merged over the file's values (per section) and, like the
    file, lose to environment variables.
    """
    return Settings.load(config_file, **overrides)
