"""The settings sections of the search area: search, cache, fetch, summary, images, provider keys.

``mcp_server.settings`` composes them into the server's tree; the environment
variables (``GEN_SEARCHER_<SECTION>__<KEY>``) and TOML keys are the sections'
field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from safe_io.settings import USER_AGENT, FetchSettings, ImageSettings, default_cache_dir

__all__ = [
    "USER_AGENT",
    "BackendConfig",
    "CacheSettings",
    "FetchSettings",
    "ImageSettings",
    "ProviderKeys",
    "SearchSettings",
    "SummarySettings",
    "default_cache_dir",
]


class SearchSettings(BaseModel):
    backend: str = Field("auto", description="auto | serper | searxng | brave | ddgs | local | a plugin's name")
    index: Path | None = Field(None, description="SQLite FTS5 index file of the local backend")
    timeout_s: float = Field(
        15.0, description="time limit of one provider request (one try, however slowly it answers)"
    )
    deadline_s: float = Field(
        30.0,
        description="time limit of one provider call, rate-limit wait, retries and backoff included: "
        "the longest a search can wait on its provider",
    )
    rate_limit_per_s: float = Field(10.0, description="provider calls per second per backend")
    max_retries: int = Field(3, description="tries per provider call (429, 5xx, timeouts and connection failures)")
    retry_backoff_s: float = Field(0.5, description="first retry delay; doubles per retry (with jitter)")
    retry_after_max_s: float = Field(30.0, description="longest provider Retry-After honoured; longer fails at once")
    serper_url: str = Field("https://google.serper.dev", description="Serper API base URL")
    brave_url: str = Field("https://api.search.brave.com/res/v1", description="Brave Search API base URL")

    @field_validator("index", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # GEN_SEARCHER_SEARCH__INDEX= (empty) means no index, not the current folder.
        return None if isinstance(value, str) and not value.strip() else value


class CacheSettings(BaseModel):
    path: Path = Field(default_factory=lambda: default_cache_dir() / "cache.db", description="SQLite cache file")
    url: str | None = Field(None, description="redis://host:port/db to share one cache among servers")
    ttl_s: int = Field(7 * 24 * 3600, description="lifetime of a cached result")
    mode: Literal["readwrite", "readonly", "replay", "off"] = Field(
        "readwrite", description="readwrite | readonly | replay (a miss is an error) | off"
    )
    memory_bytes: int = Field(64 * 1024 * 1024, description="size of the in-memory layer in front of the store")
    flight_timeout_s: float = Field(
        120.0,
        description="how long identical concurrent calls wait on one in-flight computation before starting afresh",
    )
    op_timeout_s: float = Field(0.25, description="time limit of one Redis operation")
    breaker_failures: int = Field(3, description="Redis failures in a row that open the circuit breaker")
    breaker_cooldown_s: float = Field(
        10.0, description="how long an open breaker skips Redis (calls compute as on a miss) before probing it"
    )


class SummarySettings(BaseModel):
    base_url: str | None = Field(None, description="OpenAI-compatible server that summarizes pages (…/v1)")
    model: str | None = Field(None, description="summary model name on that server")
    api_key: SecretStr | None = Field(None, description="its key (default: OPENAI_API_KEY)")
    chunk_chars: int = Field(12_000, description="characters per summarized chunk")
    max_chunks: int = Field(8, description="chunks summarized per browse call; longer pages continue via next_offset")
    max_concurrency: int = Field(8, description="chunks summarized at once")
    text_budget: int = Field(8_000, description="characters returned per browse call without a summary model")
    timeout_s: float = Field(120.0, description="time limit of one summary request")


class ProviderKeys(BaseModel):
    """The search providers' credentials, read from their customary variables by the settings root."""

    serper_api_key: SecretStr | None = None
    brave_api_key: SecretStr | None = None
    # A secret too: an instance URL may carry credentials (https://user:password@host).
    searxng_url: SecretStr | None = None


@dataclass(frozen=True)
class BackendConfig:
    """Everything a search backend factory receives: its section, the provider keys, the User-Agent."""

    search: SearchSettings
    keys: ProviderKeys
    user_agent: str = USER_AGENT
