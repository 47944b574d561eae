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
