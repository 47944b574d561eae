"""Judge rubrics: K-Score (KnowGen), WISE (legacy WiScore and Verified) and the training text rubric."""

from benchmark.rubrics.kscore import (
    GROUPS,
    DimensionMeans,
    KScoreJudgement,
    KScoreSummary,
    UnknownCategoryError,
    aggregate_kscore,
    category_group,
    dimension_means,
    judge_kscore,
    score_from_means,
)
from benchmark.rubrics.text import TextJudgement, judge_text
from benchmark.rubrics.wise import (
    WiseLegacyJudgement,
    WiseSummary,
    WiseVerifiedJudgement,
    aggregate_wise,
    judge_wise,
    wise_category,
)

__all__ = [
    "GROUPS",
    "DimensionMeans",
    "KScoreJudgement",
    "KScoreSummary",
    "TextJudgement",
    "UnknownCategoryError",
    "WiseLegacyJudgement",
    "WiseSummary",
    "WiseVerifiedJudgement",
    "aggregate_kscore",
    "aggregate_wise",
    "category_group",
    "dimension_means",
    "judge_kscore",
    "judge_text",
    "judge_wise",
    "score_from_means",
    "wise_category",
]
