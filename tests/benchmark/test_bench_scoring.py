"""Scoring arithmetic: K-Score against the paper's published numbers, text N/A handling, WISE weights."""

from __future__ import annotations

import pytest

from benchmark.rubrics import (
    GROUPS,
    KScoreJudgement,
    UnknownCategoryError,
    aggregate_kscore,
    aggregate_wise,
    category_group,
    dimension_means,
    score_from_means,
    wise_category,
)

# (visual correctness, text accuracy, faithfulness, aesthetics) per group, as published.
PUBLISHED = {
    "Qwen-Image": ((6.80, 0.34, 47.45, 56.80), (7.59, 1.40, 68.90, 61.90), 14.98),
    "Gen-Searcher-8B + Qwen-Image": ((26.87, 17.18, 65.14, 55.44), (25.30, 23.55, 76.64, 61.46), 31.52),
}


def _group_score(vc: float, ta: float, f: float, a: float) -> float:
    return score_from_means(faithfulness=f, visual_correctness=vc, text_accuracy=ta, aesthetics=a)


@pytest.mark.parametrize("system", list(PUBLISHED))
def test_published_group_scores_reproduce_published_totals(system: str) -> None:
    science, pop, total = PUBLISHED[system]
    overall = (_group_score(*science) + _group_score(*pop)) / 2
    # The sub-scores are themselves rounded to 2 decimals, so the total agrees to within rounding.
    assert overall == pytest.approx(total, abs=0.011)


def test_published_totals_exactly_as_recomputed() -> None:
    qwen = PUBLISHED["Qwen-Image"]
    assert round((_group_score(*qwen[0]) + _group_score(*qwen[1])) / 2, 2) == 14.98
    ours = PUBLISHED["Gen-Searcher-8B + Qwen-Image"]
    assert round((_group_score(*ours[0]) + _group_score(*ours[1])) / 2, 2) == 31.51  # published: 31.52


def test_item_score_weights_and_text_na() -> None:
    assert KScoreJudgement(1, 0, 0, False, 0).score == pytest.approx(0.1)
    assert KScoreJudgement(0, 1, 0, False, 0).score == pytest.approx(0.4)
    assert KScoreJudgement(0, 0, 1, False, 0).score == pytest.approx(0.4)
    assert KScoreJudgement(0, 0, 0, False, 1).score == pytest.approx(0.1)
    # not applicable: text counts as 0.5 whatever the judge put in text_accuracy
    assert KScoreJudgement(0, 0, 0, True, 0).score == pytest.approx(0.2)
    assert KScoreJudgement(0, 0, 1, True, 0).score == pytest.approx(0.2)


def test_text_accuracy_group_mean_only_over_items_needing_text() -> None:
    items = [
        KScoreJudgement(1, 1, 1, False, 1),
        KScoreJudgement(1, 0.5, 0, False, 0.5),
        KScoreJudgement(0.5, 0, 0, True, 1),  # needs no text: left out of text accuracy
        KScoreJudgement(0, 0, 0, True, 0),
    ]
    means = dimension_means(items)
    assert means.n == 4 and means.text_n == 2
    assert means.text_accuracy == pytest.approx(50.0)  # (1 + 0) / 2, the N/A items do not dilute it
    assert means.faithfulness == pytest.approx(62.5)
    assert means.visual_correctness == pytest.approx(37.5)
    assert means.aesthetics == pytest.approx(62.5)
    assert means.score == pytest.approx(0.1 * 62.5 + 0.4 * 37.5 + 0.4 * 50 + 0.1 * 62.5)
    only_na = dimension_means([KScoreJudgement(1, 1, 0, True, 1)])
    assert only_na.text_n == 0 and only_na.text_accuracy == pytest.approx(50.0)


def test_aggregate_is_mean_of_group_scores_not_of_items() -> None:
    science = [KScoreJudgement(1, 1, 1, False, 1)] * 3  # group score 100
    pop = [KScoreJudgement(0, 0, 0, False, 0)]  # group score 0
    summary = aggregate_kscore([("astronomy", j) for j in science] + [("multi_anime", j) for j in pop])
    assert summary.groups["science_and_knowledge"].score == pytest.approx(100)
    assert summary.groups["pop_culture_and_news"].score == pytest.approx(0)
    assert summary.overall == pytest.approx(50)  # the item mean would be 75
    assert set(summary.categories) == {"astronomy", "multi_anime"}


def test_failed_generation_zero_counts_against_text_accuracy() -> None:
    summary = aggregate_kscore([("film", KScoreJudgement(1, 1, 1, False, 1)), ("film", KScoreJudgement.zero("failed"))])
    assert summary.groups["pop_culture_and_news"].text_accuracy == pytest.approx(50)
    assert summary.groups["pop_culture_and_news"].text_n == 2


def test_categories_and_multi_subject_variants() -> None:
    assert category_group("Astronomy") == "science_and_knowledge"
    for name in ("anime", "Multi-subject Anime", "multi_celebrities", "game (multi subject)", "Posters", "News"):
        assert category_group(name) == "pop_culture_and_news", name
    assert len(GROUPS["science_and_knowledge"]) == 15 and len(GROUPS["pop_culture_and_news"]) == 6
    with pytest.raises(UnknownCategoryError, match="unknown KnowGen category 'cooking'"):
        category_group("cooking")


def test_judgement_validation() -> None:
    ok = KScoreJudgement.from_dict(
        {
            "faithfulness": "1",
            "visual_correctness": 0.5,
            "text_accuracy": None,
            "text_accuracy_na": "true",
            "aesthetics": 0,
            "rationale": "r",
        }
    )
    assert ok == KScoreJudgement(1.0, 0.5, 0.0, True, 0.0, "r")
    with pytest.raises(ValueError, match="text_accuracy must be one of"):
        KScoreJudgement.from_dict(
            {
                "faithfulness": 1,
                "visual_correctness": 1,
                "text_accuracy": None,
                "text_accuracy_na": False,
                "aesthetics": 1,
            }
        )
    with pytest.raises(ValueError, match="text_accuracy_na must be true or false"):
        KScoreJudgement.from_dict(
            {
                "faithfulness": 1,
                "visual_correctness": 1,
                "text_accuracy": 1,
                "text_accuracy_na": "maybe",
                "aesthetics": 1,
            }
        )


def test_wise_weights() -> None:
    legacy = aggregate_wise(
        "legacy",
        [
            ("Cultural knowledge", 1.0),
            ("time", 0.5),
            ("Space", 0.0),
            ("Biology", 1.0),
            ("Physical Knowledge", 0.0),
            ("Chemistry", 0.5),
        ],
    )
    assert legacy.overall == pytest.approx(0.4 * 1 + 0.167 * 0.5 + 0 + 0.1 * (1 + 0 + 0.5))
    verified = aggregate_wise(
        "verified",
        [
            ("Cultural knowledge", 1.0),
            ("Cultural knowledge", 0.0),
            ("time", 1.0),
            ("Space", 1.0),
            ("Biology", 0.0),
            ("Physical Knowledge", 1.0),
            ("Chemistry", 0.0),
        ],
    )
    assert verified.categories["cultural"] == pytest.approx(0.5)
    assert verified.overall == pytest.approx(0.4 * 0.5 + 0.12 * 3)
    partial = aggregate_wise("verified", [("time", 1.0), ("Chemistry", 0.0)])
    assert partial.overall == pytest.approx(0.5)  # weights renormalised over present categories
    assert wise_category("Physical Knowledge") == "physics"
    with pytest.raises(ValueError, match="unknown WISE category"):
        wise_category("Cooking")
