"""What typed tool outputs cost per call: the server's check of each result against its output model,
and the client's check against the declared outputSchema (what the Python SDK does on every call).

    .venv/bin/python -m perf.tool_outputs [--seconds 1]

Results: ``search`` with 5 queries x 10 hits (the largest) and 2 x 5, ``image_search`` with 10 images, a
``browse`` slice of 8,000 characters, a ``render``. Prints microseconds per result for the
server-side validation (pydantic, as ``FuncMetadata.convert_result`` runs it), the client-side
validation (a compiled jsonschema validator, as ``ClientSession.validate_tool_result`` runs it)
and the policy's read through the models (``parse_output``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from jsonschema.validators import validator_for
from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema
from pydantic import TypeAdapter

from gen_searcher_core.tool_results import OUTPUT_MODELS, parse_output


def samples() -> list[tuple[str, str, dict[str, Any]]]:
    url = "https://en.wikipedia.org/wiki/Eiffel_Tower"
    hit = {"title": "Eiffel Tower - Wikipedia", "url": url, "snippet": "x" * 160}
    search = {
        "results": [
            {"query": f"query {q}", "hits": [{**hit, "position": i + 1} for i in range(10)], "error": None}
            for q in range(5)
        ]
    }
    image = {"title": "t", "page_url": "https://p.example/a", "source_url": "https://i.example/a.jpg"}
    found = [{"id": f"img_{i:016x}", **image, "width": 800, "height": 600} for i in range(10)]
    images = {"query": "q", "images": found}
    browse = {
        "url": "https://example.org/page",
        "title": "Page",
        "content": "word " * 1600,
        "summarized": False,
        "offset": 0,
        "next_offset": 8000,
        "total_chars": 30000,
        "fetched_with": "direct",
    }
    render = {"id": "img_0123456789abcdef", "width": 1024, "height": 1024, "uri": "image://img_0123456789abcdef"}
    render.update(seed=7, elapsed_s=3.2)
    typical = {"results": [{**entry, "hits": entry["hits"][:5]} for entry in search["results"][:2]]}
    return [
        ("search 5x10", "search", search),
        ("search 2x5", "search", typical),
        ("image_search", "image_search", images),
        ("browse", "browse", browse),
        ("render", "render", render),
    ]


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    fn()
    calls = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            fn()
        calls += 50
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each measurement")
    args = parser.parse_args()
    print(f"{'result':<14}{'server check':>14}{'client check':>14}{'policy read':>13}   (microseconds per result)")
    for label, tool, data in samples():
        model = OUTPUT_MODELS[tool]
        adapter = TypeAdapter(model)
        schema = adapter.json_schema(schema_generator=StrictJsonSchema)
        validator = validator_for(schema)(schema)
        assert not list(validator.iter_errors(data)), tool
        server = per_call_us(lambda adapter=adapter, data=data: adapter.validate_python(data), args.seconds)
        client = per_call_us(lambda validator=validator, data=data: list(validator.iter_errors(data)), args.seconds)
        policy = per_call_us(lambda tool=tool, data=data: parse_output(tool, data), args.seconds)
        print(f"{label:<14}{server:>14.1f}{client:>14.1f}{policy:>13.1f}")


if __name__ == "__main__":
    main()
