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

# -- untrusted text ------------------------------------------------------------
# Every name, id and URI a client sends is refused over these lengths before any
# other work, and error messages are scrubbed on a capped length, so one request's
# cost is bounded however large its strings are.

#: Longest tool or prompt name accepted (the MCP specification suggests 1 to 128 characters).
MAX_NAME_CHARS = 128
#: Longest resource URI accepted (``image://`` ids need 30).
MAX_URI_CHARS = 2048
#: Longest string JSON-RPC request id accepted (it is echoed in the answer).
MAX_REQUEST_ID_CHARS = 256
#: Longest error message sent to a client; longer ones are cut, with the cut said.
MAX_MESSAGE_CHARS = 8192

# -- requests ------------------------------------------------------------------
# Each request is checked once, where it enters (the tool's schema, the render
# server's body, or the request model an embedder builds); the layers inside
# take the validated value and do not check it again. docs/limits.md lists them.

#: Queries one ``search`` call may carry.
MAX_QUERIES = 5
#: Longest search or image-search query, after its whitespace is collapsed.
MAX_QUERY_CHARS = 500
#: Most results (or images) one tool call may ask for per query.
MAX_TOP_K = 10
#: Most hits a search backend is asked for in one call (``image_search`` asks for spare candidates).
MAX_SEARCH_K = 100
#: Longest render prompt (and negative prompt).
MAX_PROMPT_CHARS = 4000
#: Render sizes: each side a multiple of ``SIZE_MULTIPLE`` from ``MIN_SIDE`` to ``MAX_SIDE``, at most ``MAX_PIXELS``.
MIN_SIDE = 64
MAX_SIDE = 2048
SIZE_MULTIPLE = 16
MAX_PIXELS = 2048 * 2048
#: Denoising steps of one render (Qwen-Image's scheduler divides by zero at a single step).
MIN_STEPS = 2
MAX_STEPS = 200
#: Images one render request may ask for.
MAX_IMAGES = 4
#: Largest render seed.
MAX_SEED = 2**63 - 1
