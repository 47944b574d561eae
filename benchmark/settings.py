"""The benchmark area's settings: the ``[judge]`` section and the root ``gen-searcher bench`` loads.

Environment names are the documented ones, ``GEN_SEARCHER_JUDGE_<KEY>``
(``GEN_SEARCHER_JUDGE__<KEY>`` works too); the judge's key falls back to
``OPENAI_API_KEY``; the WISE prompts' folder is ``GEN_SEARCHER_WISE_DIR``. The
same ``--config`` TOML file configures them (``[judge]``, top-level ``wise_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gen_searcher_core.config import ConfigRoot


class JudgeSettings(BaseSettings):
    """Where the judge lives and how hard to push it.

    The ``[judge]`` section of :class:`BenchConfig`. Built on its own
    (``JudgeSettings(model=...)``) it reads ``GEN_SEARCHER_JUDGE_<KEY>`` itself,
    as the verl reward does.
    """

    model_config = SettingsConfigDict(env_prefix="GEN_SEARCHER_JUDGE_", extra="ignore", populate_by_name=True)

    base_url: str = Field(
        "https://api.openai.com/v1", description="OpenAI-compatible API root (before /chat/completions)"
    )
    model: str = Field("gpt-4.1", description="judge model name (a vision model)")
    api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("GEN_SEARCHER_JUDGE_API_KEY", "OPENAI_API_KEY"),
        description="judge key (else OPENAI_API_KEY); none needed for a judge that is not api.openai.com",
    )
    timeout_s: float = Field(120.0, description="time limit of one judge request")
    max_concurrency: int = Field(8, ge=1, description="judge requests in flight at once")
    rate_limit_per_s: float | None = Field(None, gt=0, description="request starts per second; none = unlimited")
    max_attempts: int = Field(5, ge=1, description="tries per request on transient failures")
    backoff_initial_s: float = Field(1.0, ge=0, description="first retry delay; grows exponentially (with jitter)")
    backoff_max_s: float = Field(30.0, ge=0, description="longest retry delay, a server's Retry-After included")
    max_tokens: int = Field(1024, ge=16, description="longest judge reply")
    max_image_side: int = Field(1536, ge=64, description="larger images are downscaled before sending")


class BenchConfig(ConfigRoot):
    """What the benchmark area reads from the shared settings: the judge section, the WISE folder and
    ``OPENAI_API_KEY``."""

    flat_env_sections: ClassVar[tuple[str, ...]] = ("judge",)

    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    wise_dir: Path | None = Field(
        None, description="folder holding the WISE legacy/ and verified/ prompts (default of bench wise --data)"
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))

    def judge_settings(self, **overrides: object) -> JudgeSettings:
        """The judge section with ``overrides`` (command-line options) applied; the key falls back to
        ``OPENAI_API_KEY``."""
        values = {**self.judge.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        if values.get("api_key") is None:
            values["api_key"] = self.openai_api_key
        return JudgeSettings.model_validate(values)
