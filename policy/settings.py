"""The policy area's settings: the ``[policy]`` section and the root ``gen-searcher run`` loads.

The chat model's key is ``GEN_SEARCHER_POLICY_API_KEY`` (the documented name;
``GEN_SEARCHER_POLICY__API_KEY`` works too), else ``OPENAI_API_KEY``. It is a
``SecretStr``: sent only as a bearer header, never logged or put in an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import AliasChoices, BaseModel, Field, SecretStr

from gen_searcher_core.config import ConfigRoot


class PolicySettings(BaseModel):
    """The ``[policy]`` section: how the policy reaches its chat model."""

    api_key: SecretStr | None = Field(None, description="key sent to the policy's model server (else OPENAI_API_KEY)")


class PolicyConfig(ConfigRoot):
    """What the policy area reads from the shared settings."""

    flat_env_sections: ClassVar[tuple[str, ...]] = ("policy",)

    policy: PolicySettings = Field(default_factory=PolicySettings)
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key"))

    def chat_api_key(self) -> SecretStr | None:
        """The chat model's key: the policy's own, else ``OPENAI_API_KEY``."""
        return self.policy.api_key or self.openai_api_key


def chat_api_key(config_file: Path | None = None) -> SecretStr | None:
    """The chat model's key from the settings file (or ``$GEN_SEARCHER_CONFIG``) and the environment."""
    return PolicyConfig.load(config_file).chat_api_key()
