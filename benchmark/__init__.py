"""Benchmarks for Gen-Searcher: the judge client, the rubrics (K-Score, WISE, text
reward), resumable KnowGen/WISE runners and their reports.

Stable API for other areas (the verl reward imports these):

* :mod:`benchmark.judge` -- ``JudgeSettings``, ``JudgeClient``, ``JudgeError``, the ``Judge`` protocol
* :mod:`benchmark.rubrics` -- ``judge_kscore``, ``KScoreJudgement``,
  ``judge_text``, ``TextJudgement``, ``aggregate_kscore`` and the WISE rubrics.
"""
