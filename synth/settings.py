"""The data pipeline's settings: the ``[synth]`` section and the root ``gen-searcher synth`` loads.

Every stage reads its own sub-section; a stage's journal key includes a digest of
exactly the sub-sections it depends on, so changing a threshold of ``select`` redoes
``select`` and what follows it, never a paid stage. Keys for the services come from
environment variables named here (``api_key_env``), never from the file itself.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from gen_searcher_core.config import ConfigRoot


class ServiceSettings(BaseModel):
    """One OpenAI-compatible chat service (teacher, judge or SFT policy) and how hard to push it."""

    url: str | None = Field(None, description="API root (…/v1); none: the stages that need it are skipped")
    model: str | None = Field(None, description="model name sent with every request")
    api_key_env: str | None = Field(
        None, description="environment variable holding the key (none: OPENAI_API_KEY for api.openai.com)"
    )
    max_concurrency: int = Field(8, ge=1, description="requests in flight at once")
    rate_limit_per_s: float | None = Field(None, gt=0, description="request starts per second; none = unlimited")
    timeout_s: float = Field(300.0, gt=0, description="time limit of one request")
    max_attempts: int = Field(3, ge=1, description="tries per request on transient failures")
    temperature: float = Field(0.7, ge=0, description="sampling temperature (the judge always uses 0)")
    max_tokens: int = Field(4096, ge=16, description="longest reply")

    def api_key(self) -> SecretStr | None:
        """The key from ``api_key_env`` (else ``OPENAI_API_KEY`` for api.openai.com); never logged."""
        name = self.api_key_env or ("OPENAI_API_KEY" if self.url and "api.openai.com" in self.url else None)
        value = os.environ.get(name) if name else None
        return SecretStr(value) if value else None

    @property
    def given(self) -> bool:
        return bool(self.url and self.model)


class PromptSettings(BaseModel):
    """Prompts written by the teacher from a category list."""

    per_category: int = Field(0, ge=0, description="prompts the teacher writes per category (0: user prompts only)")
    categories: list[str] = Field(
        default_factory=list, description="categories to write for; empty: KnowGen's categories"
    )


class GateSettings(BaseModel):
    """Duplicates, entity cap, decontamination and the search-necessity check."""

    near_duplicate_jaccard: float = Field(0.6, gt=0, le=1, description="MinHash Jaccard at or above: near duplicate")
    minhash_permutations: int = Field(128, ge=16, description="MinHash permutations (more: finer estimates)")
    shingle_words: int = Field(2, ge=1, description="words per shingle for MinHash (duplicates among the prompts)")
    max_per_entity: int = Field(5, ge=1, description="prompts kept per primary entity")
    contamination_ngrams: list[int] = Field(
        default_factory=lambda: [8, 13], description="word n-gram sizes; a shared n-gram with a benchmark prompt drops"
    )
    contamination_shingle_words: int = Field(
        2, ge=1, description="words per shingle when comparing with benchmark prompts (small: catches rewordings)"
    )
    contamination_jaccard: float = Field(
        0.5, gt=0, le=1, description="MinHash Jaccard with a benchmark prompt at or above: contaminated"
    )
    image_hash_distance: int = Field(
        8, ge=0, le=64, description="dHash Hamming distance at or below: near-identical images"
    )
    knowgen_file: str | None = Field(
        None, description="KnowGen prompts file (bench knowgen's format): its prompts and ground-truth images stay out"
    )
    wise_dir: str | None = Field(None, description="WISE prompts folder (bench wise's format): its prompts stay out")
    benchmark_files: list[str] = Field(
        default_factory=list,
        description="benchmark prompt files (JSON/JSONL with prompt and optional image paths) to decontaminate against",
    )
    closed_book: Literal["drop", "flag", "off"] = Field(
        "drop", description="prompts the teacher answers without tools: drop, keep flagged, or skip the check"
    )
    closed_book_max_share: float = Field(
        0.1, ge=0, le=1, description="with closed_book = flag: most flagged prompts, as a share of those the gate keeps"
    )
    closed_book_threshold: float = Field(
        0.75, ge=0, le=1, description="judge score of the tool-less plan at or above: answerable closed-book"
    )


class TrajectorySettings(BaseModel):
    rollouts: int = Field(4, ge=1, description="teacher rollouts per prompt (k)")
    seed: int = Field(0, description="base sampling seed; rollout i sends seed + i")


class TruthSettings(BaseModel):
    """The ground-truth image and its checks."""

    width: int | None = Field(None, description="render width (none: the render tool's default)")
    height: int | None = Field(None, description="render height (none: the render tool's default)")
    min_judge_score: float = Field(0.5, ge=0, le=1, description="judge's score of the ground truth at or above: kept")


class SelectSettings(BaseModel):
    """Gates of the one trajectory kept per prompt (offline: changing them calls no service)."""

    min_references: int = Field(1, ge=0, description="fewest references in the answer")
    max_references: int = Field(5, ge=1, description="most references in the answer")
    min_image_searches: int = Field(1, ge=0, description="fewest image_search calls")
    min_tool_calls: int = Field(1, ge=0, description="fewest tool calls")
    max_tokens: int = Field(12000, ge=1, description="longest trajectory (estimated tokens; the SFT max_length)")
    min_score: float = Field(0.5, ge=0, le=1, description="lowest dual reward")
    min_image_score: float = Field(0.0, ge=0, le=1, description="lowest K-Score part")
    min_text_score: float = Field(0.0, ge=0, le=1, description="lowest text part")


class CalibrateSettings(BaseModel):
    """RL prompts whose reward varies across the SFT policy's rollouts."""

    rollouts: int = Field(4, ge=2, description="policy rollouts per RL candidate (n)")
    min_mean: float = Field(0.1, ge=0, le=1, description="lowest mean reward kept")
    max_mean: float = Field(0.9, ge=0, le=1, description="highest mean reward kept")
    min_std: float = Field(0.05, ge=0, description="lowest reward spread (std) kept")


class SplitSettings(BaseModel):
    seed: int = Field(0, description="seed of the split")
    dev_fraction: float = Field(0.1, ge=0, lt=1, description="share of entity groups per category for dev")
    rl_fraction: float = Field(0.4, ge=0, le=1, description="share of the other groups preferred for RL")


class SynthSettings(BaseModel):
    """The ``[synth]`` section."""

    teacher: ServiceSettings = Field(default_factory=ServiceSettings)
    judge: ServiceSettings = Field(default_factory=lambda: ServiceSettings(max_tokens=1024))
    policy: ServiceSettings = Field(default_factory=ServiceSettings)
    tools_url: str | None = Field(None, description="MCP tool server (…/mcp); none: a local gen-searcher serve")
    render_url: str | None = Field(None, description="MCP server with the render tool (none: the tool server)")
    max_items_in_flight: int = Field(32, ge=1, description="prompts moving through the paid stages at once")
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    trajectories: TrajectorySettings = Field(default_factory=TrajectorySettings)
    truth: TruthSettings = Field(default_factory=TruthSettings)
    select: SelectSettings = Field(default_factory=SelectSettings)
    calibrate: CalibrateSettings = Field(default_factory=CalibrateSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)


class SynthConfig(ConfigRoot):
    """What the data pipeline reads from the shared settings."""

    synth: SynthSettings = Field(default_factory=SynthSettings)
