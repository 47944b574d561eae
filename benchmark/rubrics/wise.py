"""WISE rubrics: WiScore (legacy protocol) and WISE Verified (pass/fail).

WISE items have no ground-truth image; the judge sees the prompt, the
explanation of what a knowledgeable answer shows, and the generated image.

* legacy: consistency, realism and aesthetic quality, 0-2 each;
  ``WiScore = (0.7*consistency + 0.2*realism + 0.1*aesthetic_quality) / 2``;
  overall = 0.4 Cultural + 0.167 Time + 0.133 Space + 0.1 (Biology + Physics + Chemistry).
* verified: pass/fail per image;
  overall = 0.40 Culture + 0.12 (Time + Space + Biology + Physics + Chemistry).

The two protocols' numbers are not comparable with each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from benchmark.judge import ImageInput, Judge, user_content
from benchmark.rubrics.values import as_bool, as_score, rationale, require_keys

Protocol = Literal["legacy", "verified"]
CATEGORIES = ("cultural", "time", "space", "biology", "physics", "chemistry")
LEGACY_WEIGHTS = {"cultural": 0.4, "time": 0.167, "space": 0.133, "biology": 0.1, "physics": 0.1, "chemistry": 0.1}
VERIFIED_WEIGHTS = {"cultural": 0.40, "time": 0.12, "space": 0.12, "biology": 0.12, "physics": 0.12, "chemistry": 0.12}
WEIGHTS: dict[str, dict[str, float]] = {"legacy": LEGACY_WEIGHTS, "verified": VERIFIED_WEIGHTS}
_CATEGORY_WORDS = {
    "cultural": "cultural",
    "culture": "cultural",
    "time": "time",
    "temporal": "time",
    "space": "space",
    "spatial": "space",
    "biology": "biology",
    "physics": "physics",
    "physical": "physics",
    "chemistry": "chemistry",
}


def wise_category(raw: str) -> str:
    """Map a WISE ``Category`` value ("Cultural knowledge", "Physical Knowledge", "time") to a CATEGORIES key."""
    for word in re.split(r"[^a-z]+", raw.lower()):
        if word in _CATEGORY_WORDS:
            return _CATEGORY_WORDS[word]
    raise ValueError(f"unknown WISE category {raw!r}; expected one of {', '.join(CATEGORIES)}")


@dataclass(frozen=True)
class WiseLegacyJudgement:
    consistency: float
    realism: float
    aesthetic_quality: float
    rationale: str = ""

    @property
    def score(self) -> float:
        """WiScore in [0, 1]."""
        return (0.7 * self.consistency + 0.2 * self.realism + 0.1 * self.aesthetic_quality) / 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def zero(cls, reason: str) -> WiseLegacyJudgement:
        return cls(0.0, 0.0, 0.0, reason)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> WiseLegacyJudgement:
        require_keys(obj, ("consistency", "realism", "aesthetic_quality"))
        allowed = (0.0, 1.0, 2.0)
        return cls(
            consistency=as_score(obj["consistency"], "consistency", allowed),
            realism=as_score(obj["realism"], "realism", allowed),
            aesthetic_quality=as_score(obj["aesthetic_quality"], "aesthetic_quality", allowed),
            rationale=rationale(obj),
        )


@dataclass(frozen=True)
class WiseVerifiedJudgement:
    passed: bool
    rationale: str = ""

    @property
    def score(self) -> float:
        return 1.0 if self.passed else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def zero(cls, reason: str) -> WiseVerifiedJudgement:
        return cls(False, reason)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> WiseVerifiedJudgement:
        require_keys(obj, ("passed",))
        return cls(passed=as_bool(obj["passed"], "passed"), rationale=rationale(obj))


WiseJudgement = WiseLegacyJudgement | WiseVerifiedJudgement

LEGACY_PROMPT = """You grade an image made by a text-to-image model for a world-knowledge benchmark.
The request is deliberately indirect: producing the right image needs knowledge (culture, time,
space, biology, physics, chemistry). The EXPLANATION states what a correct image shows.

Score three aspects with 0, 1 or 2:
- consistency: does the image show what the explanation says a correct answer shows?
  2 = fully, 1 = partly (right idea, wrong or missing key details), 0 = not at all.
- realism: is it physically and visually plausible? 2 = convincing, 1 = noticeable flaws, 0 = implausible.
- aesthetic_quality: composition, colour, detail. 2 = high, 1 = average, 0 = poor.
Answer with one JSON object and nothing else:
{"consistency": 0|1|2, "realism": 0|1|2, "aesthetic_quality": 0|1|2, "rationale": "<one or two sentences>"}"""

VERIFIED_PROMPT = """You check an image made by a text-to-image model for a world-knowledge benchmark.
The request is deliberately indirect: producing the right image needs knowledge. The EXPLANATION
states what a correct image must show. Pass the image only if it clearly shows every element the
explanation requires and nothing that contradicts it; otherwise fail it.
Answer with one JSON object and nothing else: {"passed": true|false, "rationale": "<one or two sentences>"}"""


async def judge_wise(
    judge: Judge, *, protocol: Protocol, prompt: str, explanation: str, image: ImageInput
) -> WiseJudgement:
    """Judge one WISE image under ``protocol``; raises ``JudgeError``."""
    url = await judge.image(image)
    text = f"Request given to the image generator:\n{prompt}\n\nEXPLANATION of a correct image:\n{explanation}"
    system = LEGACY_PROMPT if protocol == "legacy" else VERIFIED_PROMPT
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user_content(text, [("Generated image:", url)])},
    ]
    if protocol == "legacy":
        return await judge.judge_json(messages, WiseLegacyJudgement.from_dict)
    return await judge.judge_json(messages, WiseVerifiedJudgement.from_dict)


@dataclass(frozen=True)
class WiseSummary:
    protocol: str
    overall: float
    categories: dict[str, float]
    counts: dict[str, int]


def aggregate_wise(protocol: Protocol, items: Iterable[tuple[str, float]]) -> WiseSummary:
    """Overall WISE score from ``(category, item score)`` pairs.

    Category means are weighted by the protocol's weights; categories with no
    items are left out and the remaining weights renormalised.
    """
    weights = WEIGHTS[protocol]
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for raw_category, score in items:
        category = wise_category(raw_category)
        sums[category] = sums.get(category, 0.0) + score
        counts[category] = counts.get(category, 0) + 1
    if not counts:
        raise ValueError("no judgements to aggregate")
    means = {c: sums[c] / counts[c] for c in CATEGORIES if c in counts}
    total_weight = sum(weights[c] for c in means)
    overall = sum(weights[c] * m for c, m in means.items()) / total_weight
    return WiseSummary(protocol=protocol, overall=overall, categories=means, counts=counts)
