"""``gen-searcher demo``: the whole pipeline on one machine with no keys and no network.

A small sample web (:mod:`benchmark.demo.sample_web`) is served on loopback and
indexed with the local index; a scripted policy model and a scripted judge
(:mod:`benchmark.demo.scripted`, OpenAI-compatible servers on loopback) stand in
for real models; the tool server runs as ``gen-searcher serve --transport stdio``
started by the policy, and a tiny random-weight Qwen-Image pipeline renders when
the render extra is installed. :mod:`benchmark.demo.run` puts it together.
"""
