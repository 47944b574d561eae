"""Cold start of the stdio server: spawn to answered ``initialize`` and ``tools/list``.

    .venv/bin/python -m perf.cold_start [--runs 7] [--reference .venv-ref-fetch/bin/mcp-server-fetch]

A desktop assistant launches ``gen-searcher serve --transport stdio`` itself
and waits for ``initialize`` (the MCP Inspector gives up after 15 s). This
script does the same with the real console script (``gen-searcher`` next to
this Python), speaking raw JSON-RPC over the pipes, in three configurations:

* ``no render``: the local backend over a tiny index;
* ``render``: additionally the diffusers renderer over a tiny Qwen-Image
  pipeline built here (the model loads in the background after ``initialize``);
* ``reference``: the official fetch server (``mcp-server-fetch`` from PyPI,
  installed into its own venv), when ``--reference`` names its executable.

Runs alternate between configurations so machine load hits them alike. It
prints the median and best time to the ``initialize`` answer and to the
``tools/list`` answer (target: tools/list within 1.5 s on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = {"eiffel-tower.md": "# Eiffel Tower\n\nA wrought-iron lattice tower in Paris, completed in 1889."}
TARGET_S = 1.5


def _message(method: str, params: dict[str, Any] | None = None, id_: int | None = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        body["params"] = params
    if id_ is not None:
        body["id"] = id_
    return (json.dumps(body) + "\n").encode()


def _read_answer(process: subprocess.Popen[bytes], want_id: int, deadline: float) -> dict[str, Any]:
    """The JSON-RPC answer with ``want_id`` from the server's stdout (notifications skipped)."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no answer to request {want_id}")
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"server exited (status {process.poll()}) before answering request {want_id}")
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                answer = json.loads(line)
                if answer.get("id") == want_id:
                    if "error" in answer:
                        raise RuntimeError(f"request {want_id} failed: {answer['error']}")
                    return answer
    finally:
        selector.close()


def cold_start(command: list[str], env: dict[str, str], timeout_s: float = 60.0) -> tuple[float, float, int]:
    """Seconds from spawn to the ``initialize`` answer and to the ``tools/list`` answer, and the tool count."""
    started = time.perf_counter()
    deadline = started + timeout_s
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    assert process.stdin is not None
    try:
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "cold-start-bench", "version": "0"},
        }
        process.stdin.write(_message("initialize", init, 1))
        process.stdin.flush()
        _read_answer(process, 1, deadline)
        initialized = time.perf_counter() - started
        process.stdin.write(_message("notifications/initialized") + _message("tools/list", {}, 2))
        process.stdin.flush()
        listing = _read_answer(process, 2, deadline)
        listed = time.perf_counter() - started
        return initialized, listed, len(listing["result"]["tools"])
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def build_tiny_model(directory: Path) -> Path:
    """A tiny random-weight Qwen-Image pipeline folder (the same one the tests build)."""
    from tests.support.tiny_qwen_image import build_tiny_qwen_image

    return build_tiny_qwen_image(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="cold starts per configuration")
    parser.add_argument(
        "--reference",
        default=str(ROOT / ".venv-ref-fetch" / "bin" / "mcp-server-fetch"),
        help="executable of the official fetch server (skipped when missing)",
    )
    parser.add_argument("--render-model", help="diffusers pipeline folder (default: build a tiny one)")
    args = parser.parse_args()

    console_script = str(Path(sys.executable).parent / "gen-searcher")
    with tempfile.TemporaryDirectory(prefix="gen-searcher-cold-") as tmp:
        from search_tools.index import build_index

        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for name, text in CORPUS.items():
            (corpus / name).write_text(text, encoding="utf-8")
        index = build_index(corpus, Path(tmp) / "index.db").path
        base_env = {key: value for key, value in os.environ.items() if not key.startswith(("GEN_SEARCHER_", "OPENAI_"))}
        plain = {
            **base_env,
            "GEN_SEARCHER_SEARCH__BACKEND": "local",
            "GEN_SEARCHER_SEARCH__INDEX": str(index),
            "GEN_SEARCHER_CACHE__PATH": str(Path(tmp) / "cache.db"),
            "GEN_SEARCHER_IMAGES__DIR": str(Path(tmp) / "images"),
            "GEN_SEARCHER_SERVER__LOG_LEVEL": "WARNING",
        }
        model = args.render_model or str(build_tiny_model(Path(tmp) / "model"))
        render = {
            **plain,
            "GEN_SEARCHER_RENDER__BACKEND": "diffusers",
            "GEN_SEARCHER_RENDER__MODEL": model,
            "GEN_SEARCHER_RENDER__DEVICE": "cpu",
        }
        serve = [console_script, "serve", "--transport", "stdio"]
        configs: dict[str, tuple[list[str], dict[str, str]]] = {
            "no render": (serve, plain),
            "render (diffusers)": (serve, render),
        }
        if Path(args.reference).exists():
            configs["official fetch server"] = ([args.reference], base_env)
        else:
            print(f"note: {args.reference} not found; the official fetch server is not measured", file=sys.stderr)
        figures: dict[str, list[tuple[float, float, int]]] = {name: [] for name in configs}
        for run in range(args.runs):
            order = list(configs.items()) if run % 2 == 0 else list(configs.items())[::-1]
            for name, (command, env) in order:
                figures[name].append(cold_start(command, env))
            print(f"  run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)

    rows = [("configuration", "tools", "initialize p50 s", "best s", "tools/list p50 s", "best s", "target")]
    for name, values in figures.items():
        inits = [v[0] for v in values]
        lists = [v[1] for v in values]
        verdict = "-" if name.startswith("official") else ("ok" if statistics.median(lists) <= TARGET_S else "OVER")
        rows.append(
            (
                name,
                str(values[0][2]),
                f"{statistics.median(inits):.2f}",
                f"{min(inits):.2f}",
                f"{statistics.median(lists):.2f}",
                f"{min(lists):.2f}",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"cold start over stdio, {args.runs} runs each (spawn -> answer; target tools/list <= {TARGET_S} s)")
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"machine load average (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
