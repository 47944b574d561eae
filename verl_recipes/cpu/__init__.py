"""The CPU seam: what lets verl's trainers run on a machine without a GPU.

* :mod:`.cpu_platform` -- a CPU platform for verl (tests, smoke checks, ``--device cpu``);
* :mod:`.vllm_double` -- a test double for verl's vLLM rollout server, on transformers;
* :mod:`.smoke` and :mod:`.smoke_servers` -- ``gen-searcher train smoke``: one command that checks a node.
"""
