"""Speed of the MCP tool server: cached ``search`` against an echo-tool floor, and single-flight.

    .venv/bin/python -m perf.tool_server [--sessions 1,16,64] [--rounds 8] [--seconds 1]

Starts two servers in subprocesses, both served by uvicorn over streamable
HTTP (stateful sessions): the real ``gen-searcher serve`` (local backend over a
tiny index, SQLite cache in a temp folder) and a bare ``MCPServer`` from the
same SDK whose only tool echoes its argument (the floor: SDK + transport, none
of our code). One client process then opens 1, 16 and 64 concurrent sessions
and calls a tool in a loop on each, in short rounds alternating between the two
servers; it prints median calls/s, p50/p99 latency and server CPU per call side
by side, and the ratio floor/ours (target: within 1.3x). Finally 48 sessions
fire the same uncached search at once and the script prints how many backend
calls that caused (target: exactly 1), read from the server's /metrics.

A second table puts a cached ``image_search`` (top_k 5 over a gallery page
whose photos a third subprocess serves on loopback) beside the cached
``search`` on the same server, in alternating rounds: target p50 within 2x of
the cached search at 64 sessions.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
CORPUS = {
    "eiffel-tower.md": (
        "# Eiffel Tower\n\nThe Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889."
    ),
    "golden-gate.md": "# Golden Gate Bridge\n\nA suspension bridge in San Francisco painted International Orange.",
    "mount-fuji.md": "# Mount Fuji\n\nThe highest mountain in Japan, an active stratovolcano 3776 metres high.",
    "big-ben.md": "# Big Ben\n\nThe Great Bell of the clock at the north end of the Palace of Westminster, London.",
    "taj-mahal.md": "# Taj Mahal\n\nAn ivory-white marble mausoleum on the right bank of the Yamuna in Agra, India.",
    "colosseum.md": "# Colosseum\n\nAn elliptical amphitheatre in the centre of Rome, the largest ever built.",
}
SEARCH_ARGS = {"queries": ["tower in Paris"], "top_k": 5}
ECHO_ARGS = {"text": "tower in Paris"}
IMAGE_ARGS = {"query": "harbour photo", "top_k": 5}
GALLERY_PHOTOS = 8


def photo(index: int) -> bytes:
    """A 800x600 JPEG with some detail (gradients and a grid), different per index."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 600), (20 * index % 255, 90, 160))
    draw = ImageDraw.Draw(image)
    for x in range(0, 800, 16):
        draw.line([(x, 0), (800 - x, 600)], fill=((x * 7 + index * 31) % 255, (x * 3) % 255, 200), width=3)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def gallery_page(image_base: str) -> str:
    figures = "".join(
        f'<figure><img src="{image_base}/img/{i}.jpg" alt="harbour photo {i}">'
        f"<figcaption>harbour photo number {i} at dawn</figcaption></figure>"
        for i in range(GALLERY_PHOTOS)
    )
    return f"<html><head><title>Harbour gallery</title></head><body><h1>Harbour photos</h1>{figures}</body></html>"


def serve_images(port: int) -> None:
    """The photos of the gallery page (downloaded once; later calls reuse the stored images)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    photos = {f"{i}.jpg": photo(i) for i in range(GALLERY_PHOTOS)}

    async def image(request: Request) -> Response:
        return Response(photos[request.path_params["name"]], media_type="image/jpeg")

    app = Starlette(routes=[Route("/img/{name}", image)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- servers ---------------------------------------------------------------------


def serve_echo(port: int) -> None:
    """The floor: the same SDK and transport with a tool that does nothing."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="echo", log_level="WARNING")

    @server.tool()
    async def echo(text: str) -> str:
        """Return the text."""
        return text

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, stderr=subprocess.DEVNULL)


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


# -- client load -------------------------------------------------------------------


async def measure(url: str, tool: str, arguments: dict[str, Any], sessions: int, seconds: float) -> dict[str, float]:
    """``sessions`` concurrent client sessions call ``tool`` back to back for ``seconds``."""
    from mcp import Client

    latencies: list[float] = []
    ready = anyio.Event()
    opened = 0
    all_open = anyio.Event()
    stop_at = 0.0

    async def session() -> None:
        nonlocal opened
        async with Client(url) as client:
            await client.call_tool(tool, arguments)  # warm-up (and fills the cache)
            opened += 1
            if opened == sessions:
                all_open.set()
            await ready.wait()
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                result = await client.call_tool(tool, arguments)
                latencies.append(time.perf_counter() - started)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {result.content}")

    async with anyio.create_task_group() as group:
        for _ in range(sessions):
            group.start_soon(session)
        await all_open.wait()
        began = time.perf_counter()
        stop_at = began + seconds
        ready.set()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "calls": len(latencies),
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


async def backend_calls(base_url: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base_url}/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gen_searcher_backend_calls_total":
                total += sample.value
    return total


async def burst(url: str, base_url: str, clients: int = 48) -> tuple[float, int]:
    """``clients`` sessions send one identical, never-seen search at the same instant."""
    from mcp import Client

    query = {"queries": [f"marble mausoleum burst {time.time_ns()}"], "top_k": 5}
    go = anyio.Event()
    opened = 0
    all_open = anyio.Event()
    errors = 0

    async def one() -> None:
        nonlocal opened, errors
        async with Client(url) as client:
            opened += 1
            if opened == clients:
                all_open.set()
            await go.wait()
            result = await client.call_tool("search", query)
            errors += bool(result.is_error)

    before = await backend_calls(base_url)
    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(one)
        await all_open.wait()
        go.set()
    return await backend_calls(base_url) - before, errors


# -- main ----------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


async def run(
    sessions: list[int], seconds: float, rounds: int, echo: tuple[str, int], ours: tuple[str, int], base_url: str
) -> None:
    import psutil

    servers = {
        "echo": (echo[0], psutil.Process(echo[1]), "echo", ECHO_ARGS),
        "search": (ours[0], psutil.Process(ours[1]), "search", SEARCH_ARGS),
    }
    header = (
        "sessions",
        "echo calls/s",
        "p50 ms",
        "p99 ms",
        "CPU us/call",
        "search calls/s",
        "p50 ms",
        "p99 ms",
        "CPU us/call",
        "ratio",
        "CPU ratio",
    )
    rows = [header]
    worst = 0.0
    for count in sessions:
        # Alternate floor and ours in short rounds (flipping the order each round) and take medians,
        # so load from other processes hits both alike.
        runs: dict[str, list[dict[str, float]]] = {"echo": [], "search": []}
        for round_ in range(rounds):
            order = list(servers.items()) if round_ % 2 == 0 else list(servers.items())[::-1]
            for name, (url, process, tool, arguments) in order:
                cpu_before = sum(process.cpu_times()[:2])
                figures = await measure(url, tool, arguments, count, seconds)
                figures["cpu_us"] = 1e6 * (sum(process.cpu_times()[:2]) - cpu_before) / max(1, figures["calls"] + count)
                runs[name].append(figures)
        med = {
            name: {key: statistics.median(run[key] for run in values) for key in values[0]}
            for name, values in runs.items()
        }
        ratio = med["echo"]["calls_per_s"] / med["search"]["calls_per_s"]
        cpu_ratio = med["search"]["cpu_us"] / med["echo"]["cpu_us"]
        worst = max(worst, ratio)
        cells = [str(count)]
        for name in ("echo", "search"):
            m = med[name]
            cells += [f"{m['calls_per_s']:.0f}", f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}", f"{m['cpu_us']:.0f}"]
        rows.append((*cells, f"{ratio:.2f}x", f"{cpu_ratio:.2f}x"))
        print(f"  measured {count} session(s)", file=sys.stderr, flush=True)
    print(
        "cached search vs echo floor over streamable HTTP, medians of "
        f"{rounds} alternating {seconds:g}s rounds (ratio = echo calls/s / search calls/s, target <= 1.30x;\n"
        "CPU us/call = server process CPU per call, CPU ratio = search / echo)"
    )
    print(table(rows))
    print(
        f"machine load average (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    print(f"worst throughput ratio: {worst:.2f}x ({'within' if worst <= 1.3 else 'OVER'} the 1.3x target)")
    await image_rows(sessions, seconds, rounds, ours)
    calls, errors = await burst(ours[0], base_url)
    print(f"burst of 48 identical concurrent searches: {calls:.0f} backend call(s), {errors} error(s) (target: 1)")


async def image_rows(sessions: list[int], seconds: float, rounds: int, ours: tuple[str, int]) -> None:
    """Cached image_search beside cached search on the same server (target: p50 within 2x at 64 sessions)."""
    import psutil

    process = psutil.Process(ours[1])
    tools = {"search": SEARCH_ARGS, "image_search": IMAGE_ARGS}
    rows = [
        ("sessions", "search p50 ms", "p99 ms", "image_search p50 ms", "p99 ms", "calls/s", "CPU us/call", "p50 ratio")
    ]
    last_ratio = 0.0
    for count in sessions:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in tools}
        for round_ in range(rounds):
            order = list(tools.items()) if round_ % 2 == 0 else list(tools.items())[::-1]
            for name, arguments in order:
                cpu_before = sum(process.cpu_times()[:2])
                figures = await measure(ours[0], name, arguments, count, seconds)
                figures["cpu_us"] = 1e6 * (sum(process.cpu_times()[:2]) - cpu_before) / max(1, figures["calls"] + count)
                runs[name].append(figures)
        med = {
            name: {key: statistics.median(run[key] for run in values) for key in values[0]}
            for name, values in runs.items()
        }
        last_ratio = med["image_search"]["p50_ms"] / med["search"]["p50_ms"]
        rows.append(
            (
                str(count),
                f"{med['search']['p50_ms']:.1f}",
                f"{med['search']['p99_ms']:.1f}",
                f"{med['image_search']['p50_ms']:.1f}",
                f"{med['image_search']['p99_ms']:.1f}",
                f"{med['image_search']['calls_per_s']:.0f}",
                f"{med['image_search']['cpu_us']:.0f}",
                f"{last_ratio:.2f}x",
            )
        )
        print(f"  measured image_search at {count} session(s)", file=sys.stderr, flush=True)
    print(f"cached image_search (top_k 5) vs cached search, same server, medians of {rounds} alternating rounds")
    print(table(rows))
    verdict = "within" if last_ratio <= 2.0 else "OVER"
    print(f"p50 ratio at {sessions[-1]} sessions: {last_ratio:.2f}x ({verdict} the 2x target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="1,16,64", help="comma-separated concurrent session counts")
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per round")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds per session count")
    parser.add_argument("--serve-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-images", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return
    if args.serve_images:
        serve_images(args.serve_images)
        return

    with tempfile.TemporaryDirectory(prefix="gen-searcher-perf-") as tmp:
        from search_tools.index import build_index

        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        echo_port, ours_port, images_port = free_port(), free_port(), free_port()
        for name, text in CORPUS.items():
            (corpus / name).write_text(text, encoding="utf-8")
        (corpus / "harbour.html").write_text(gallery_page(f"http://127.0.0.1:{images_port}"), encoding="utf-8")
        index = build_index(corpus, Path(tmp) / "index.db").path
        env = {
            "GEN_SEARCHER_SEARCH__BACKEND": "local",
            "GEN_SEARCHER_SEARCH__INDEX": str(index),
            "GEN_SEARCHER_CACHE__PATH": str(Path(tmp) / "cache.db"),
            "GEN_SEARCHER_IMAGES__DIR": str(Path(tmp) / "images"),
            "GEN_SEARCHER_SERVER__LOG_LEVEL": "WARNING",
            "GEN_SEARCHER_AUTH_TOKENS": "",
            "GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS": "true",  # the photos are served on loopback
            "GEN_SEARCHER_FETCH__RESPECT_ROBOTS": "false",
        }
        servers = [
            start(["-m", "perf.tool_server", "--serve-echo", str(echo_port)], {}),
            start(["-m", "mcp_server", "serve", "--port", str(ours_port)], env),
            start(["-m", "perf.tool_server", "--serve-images", str(images_port)], {}),
        ]
        try:
            wait_for_port(echo_port)
            wait_for_port(ours_port)
            wait_for_port(images_port)
            sessions = [int(part) for part in args.sessions.split(",") if part.strip()]
            base = f"http://127.0.0.1:{ours_port}"
            anyio.run(
                run,
                sessions,
                args.seconds,
                args.rounds,
                (f"http://127.0.0.1:{echo_port}/mcp", servers[0].pid),
                (f"{base}/mcp", servers[1].pid),
                base,
            )
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=10)


if __name__ == "__main__":
    main()
