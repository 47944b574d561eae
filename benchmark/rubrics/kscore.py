"""K-Score, the KnowGen metric: a generated image judged against the ground truth.

The judge scores four dimensions, each 0, 0.5 or 1, and answers with one JSON
object with exactly the keys of the published format::

    {"faithfulness": 1, "visual_correctness": 0.5, "text_accuracy": 0,
     "text_accuracy_na": false, "aesthetics": 1, "rationale": "..."}

Per item: ``0.1*F + 0.4*VC + 0.4*TA + 0.1*A`` with TA = 0.5 when the prompt
needs no rendered text (``text_accuracy_na``).

Benchmark aggregation (:func:`aggregate_kscore`) works per group: each
dimension is averaged over the group's items (text accuracy only over items
that need text), the formula is applied to those means, and the overall
score is the mean of the groups. Scores are reported on a 0-100 scale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.judge import ImageInput, Judge, user_content
from benchmark.rubrics.values import as_bool, as_score, rationale, require_keys
from gen_searcher_core.errors import UserFacingError

WEIGHTS = {"faithfulness": 0.1, "visual_correctness": 0.4, "text_accuracy": 0.4, "aesthetics": 0.1}
TEXT_NA_SCORE = 0.5
ALLOWED = (0.0, 0.5, 1.0)
DIMENSIONS = ("faithfulness", "visual_correctness", "text_accuracy", "aesthetics")
KEYS = ("faithfulness", "visual_correctness", "text_accuracy", "text_accuracy_na", "aesthetics", "rationale")

SCIENCE = "science_and_knowledge"
POP = "pop_culture_and_news"
#: KnowGen's two groups and their categories. Multi-subject variants (e.g. ``multi_anime``,
#: ``anime (multi-subject)``) belong to the group of their base category.
GROUPS: dict[str, tuple[str, ...]] = {
    SCIENCE: (
        "astronomy",
        "biology",
        "chemistry",
        "physics",
        "engineering",
        "medicine",
        "industry",
        "architecture",
        "history",
        "geography",
        "religion",
        "politics",
        "culture",
        "art",
        "sports",
    ),
    POP: ("anime", "game", "film", "celebrities", "posters", "news"),
}
_ALIASES = {
    "games": "game",
    "films": "film",
    "movie": "film",
    "movies": "film",
    "celebrity": "celebrities",
    "poster": "posters",
    "sport": "sports",
    "religions": "religion",
}
_MULTI_WORDS = {"multi", "multiple", "subject", "subjects", "multisubject"}


class UnknownCategoryError(UserFacingError, ValueError):
    pass


def normalize_category(category: str) -> tuple[str, bool]:
    """``"Multi-subject Anime"`` -> ``("anime", True)``; ``"Astronomy"`` -> ``("astronomy", False)``."""
    words = [w for w in re.split(r"[^a-z0-9]+", category.lower()) if w]
    multi = any(w in _MULTI_WORDS for w in words)
    base = "_".join(w for w in words if w not in _MULTI_WORDS)
    base = _ALIASES.get(base, base)
    return base, multi


def category_group(category: str) -> str:
    """The KnowGen group of ``category``; raises :class:`UnknownCategoryError`."""
    base, _ = normalize_category(category)
    for group, members in GROUPS.items():
        if base in members:
            return group
    raise UnknownCategoryError(
        f"unknown KnowGen category {category!r}; known: {', '.join(m for ms in GROUPS.values() for m in ms)}"
        " (optionally multi-subject)"
    )


@dataclass(frozen=True)
class KScoreJudgement:
    """One judged item; dimension values are 0, 0.5 or 1."""

    faithfulness: float
    visual_correctness: float
    text_accuracy: float
    text_accuracy_na: bool
    aesthetics: float
    rationale: str = ""

    @property
    def effective_text_accuracy(self) -> float:
        return TEXT_NA_SCORE if self.text_accuracy_na else self.text_accuracy

    @property
    def score(self) -> float:
        """Per-item K-Score in [0, 1]."""
        return (
            WEIGHTS["faithfulness"] * self.faithfulness
            + WEIGHTS["visual_correctness"] * self.visual_correctness
            + WEIGHTS["text_accuracy"] * self.effective_text_accuracy
            + WEIGHTS["aesthetics"] * self.aesthetics
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def zero(cls, reason: str) -> KScoreJudgement:
        """The judgement a failed generation gets: every dimension 0, text counted as needed."""
        return cls(0.0, 0.0, 0.0, False, 0.0, reason)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> KScoreJudgement:
        """Validate a judge reply (``ValueError`` with the reason when it does not fit)."""
        require_keys(obj, [k for k in KEYS if k != "rationale"])
        values: dict[str, float] = {}
        na = as_bool(obj["text_accuracy_na"], "text_accuracy_na")
        for key in DIMENSIONS:
            raw = obj[key]
            if key == "text_accuracy" and na and raw is None:
                values[key] = 0.0
                continue
            values[key] = as_score(raw, key, ALLOWED)
        return cls(
            faithfulness=values["faithfulness"],
            visual_correctness=values["visual_correctness"],
            text_accuracy=values["text_accuracy"],
            text_accuracy_na=na,
            aesthetics=values["aesthetics"],
            rationale=rationale(obj),
        )


# ---------------------------------------------------------------- the judge prompt

SYSTEM_PROMPT = """You grade images made by a text-to-image system for a knowledge-heavy benchmark.
You see the request the system received, the image it produced (the CANDIDATE) and a REFERENCE
image showing what a correct answer looks like. The reference is evidence of the facts (the real
look of the person, object, place, logo, event or text); it is not a style the candidate must copy.

Grade the candidate on four dimensions with 0, 0.5 or 1 each:
- faithfulness: does the candidate follow the request as written (subjects, count, actions, setting,
  composition, requested style)? 1 = all of it, 0.5 = the main intent with omissions or errors, 0 = not.
- visual_correctness: are the knowledge-bearing visual facts right when compared with the reference
  (identity and look of specific people, characters, objects, buildings, species, diagrams, uniforms,
  logos)? 1 = a knowledgeable viewer would accept it as correct, 0.5 = recognisable but with clear
  factual errors, 0 = wrong or generic.
- text_accuracy: if the request needs legible text in the image (titles, names, labels, dates,
  slogans, formulas), is that text present, legible and correctly spelled? 1 = all correct,
  0.5 = partly correct, 0 = missing or wrong. If the request needs no text at all, set
  text_accuracy_na to true and text_accuracy to 0.
- aesthetics: overall image quality (composition, coherence, absence of artifacts). 1 = high,
  0.5 = acceptable with flaws, 0 = poor.

Judge only what is visible. Be strict: partial knowledge earns 0.5, not 1.
Answer with one JSON object and nothing else, with exactly these keys:
{"faithfulness": 0|0.5|1, "visual_correctness": 0|0.5|1, "text_accuracy": 0|0.5|1,
 "text_accuracy_na": true|false, "aesthetics": 0|0.5|1, "rationale": "<one or two sentences>"}"""


async def kscore_messages(
    judge: Judge, *, prompt: str, image: ImageInput, gt_image: ImageInput
) -> list[dict[str, Any]]:
    """The chat messages that ask ``judge`` for one K-Score judgement."""
    candidate = await judge.image(image)
    reference = await judge.image(gt_image)
    text = f"Request given to the image generator:\n{prompt}\n\nGrade the CANDIDATE against the REFERENCE."
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": user_content(text, [("CANDIDATE image:", candidate), ("REFERENCE image:", reference)]),
        },
    ]


async def judge_kscore(judge: Judge, *, prompt: str, image: ImageInput, gt_image: ImageInput) -> KScoreJudgement:
    """Judge one generated ``image`` for ``prompt`` against ``gt_image``; raises ``JudgeError``."""
    messages = await kscore_messages(judge, prompt=prompt, image=image, gt_image=gt_image)
    return await judge.judge_json(messages, KScoreJudgement.from_dict, repair_hint="Keys: " + ", ".join(KEYS) + ".")


# ---------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class DimensionMeans:
    """Means on a 0-100 scale; ``text_n`` items needed text (the denominator of text accuracy)."""

    n: int
    faithfulness: float
    visual_correctness: float
    text_accuracy: float
    aesthetics: float
    text_n: int
    score: float


@dataclass
class KScoreSummary:
    overall: float
    groups: dict[str, DimensionMeans]
    categories: dict[str, DimensionMeans] = field(default_factory=dict)


def score_from_means(
    *, faithfulness: float, visual_correctness: float, text_accuracy: float, aesthetics: float
) -> float:
    """The K-Score formula applied to (group) means, any scale."""
    return (
        WEIGHTS["faithfulness"] * faithfulness
        + WEIGHTS["visual_correctness"] * visual_correctness
        + WEIGHTS["text_accuracy"] * text_accuracy
        + WEIGHTS["aesthetics"] * aesthetics
    )


def dimension_means(judgements: Iterable[KScoreJudgement]) -> DimensionMeans:
    """Per-dimension means (x100) of ``judgements``; text accuracy over items needing text only.

    When no item needs text, text accuracy counts as the not-applicable score (50).
    """
    items = list(judgements)
    if not items:
        raise ValueError("no judgements to aggregate")
    n = len(items)
    text_items = [j.text_accuracy for j in items if not j.text_accuracy_na]
    means = {
        "faithfulness": 100 * sum(j.faithfulness for j in items) / n,
        "visual_correctness": 100 * sum(j.visual_correctness for j in items) / n,
        "text_accuracy": 100 * (sum(text_items) / len(text_items) if text_items else TEXT_NA_SCORE),
        "aesthetics": 100 * sum(j.aesthetics for j in items) / n,
    }
    return DimensionMeans(n=n, text_n=len(text_items), score=score_from_means(**means), **means)


def aggregate_kscore(items: Iterable[tuple[str, KScoreJudgement]]) -> KScoreSummary:
    """Benchmark K-Score from ``(category, judgement)`` pairs: per-group means, overall = mean of groups.

    Groups without items are left out of the overall mean.
    """
    by_group: dict[str, list[KScoreJudgement]] = {}
    by_category: dict[str, list[KScoreJudgement]] = {}
    for category, judgement in items:
        by_group.setdefault(category_group(category), []).append(judgement)
        by_category.setdefault(category, []).append(judgement)
    if not by_group:
        raise ValueError("no judgements to aggregate")
    groups = {g: dimension_means(by_group[g]) for g in GROUPS if g in by_group}
    overall = sum(m.score for m in groups.values()) / len(groups)
    categories = {c: dimension_means(js) for c, js in sorted(by_category.items())}
    return KScoreSummary(overall=overall, groups=groups, categories=categories)
