"""The published Gen-Searcher protocol's limits, in one place for every area that enforces them.

An answer names 1 to 5 reference images; the first 3 go to the generator. The
policy checks answers against them, the render tool and the render server
accept up to ``MAX_REFERENCES`` ids and use the first ``GENERATOR_REFERENCES``.
"""

from __future__ import annotations

#: Fewest reference images an answer may name.
MIN_REFERENCES = 1
#: Most reference images an answer (or a render request) may name.
MAX_REFERENCES = 5
#: How many of them, from the first, the generator receives.
GENERATOR_REFERENCES = 3
#: Ordinary model calls of an episode before the forced final one.
MAX_MODEL_CALLS = 9
