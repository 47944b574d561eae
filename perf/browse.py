"""Speed and extraction quality of ``browse`` against the reference MCP fetch server, in one run.

    .venv/bin/python -m perf.browse [--concurrency 8] [--rounds 5] [--skip-mcp]
        [--part all|pipeline|library|fetchers|extraction] [--browser-concurrency 4]

The annotated pages built by ``perf/data/make_pages.py`` into a temporary folder
are served on 127.0.0.1. Two comparisons run over the same pages:

1. pipeline: our fetch + extraction (no summary model) and the reference's
   ``fetch_url`` (``mcp-server-fetch`` from PyPI: httpx + readabilipy +
   markdownify), each in its own interpreter via ``_browse_worker.py``;
2. tool over MCP stdio: ``gen-searcher serve --transport stdio`` (``browse``,
   cache off, robots off) and ``python -m mcp_server_fetch`` (``fetch``), both
   driven by the same MCP client with the same concurrency.

For each it prints pages/s and, per tool, the share of annotated snippets it
gets right: "keep" snippets present in the output and "drop" snippets absent.
A page that fails (say a connect timeout) does not end the run: it is counted
in the "failed" column, left out of pages/s, and scored as missing output.
Targets: quality at least the reference's, throughput at least 2x.

3. page fetchers (``--part fetchers``): ``direct``, ``auto``, ``browser`` and the
   reference on the server-rendered pages and on a JavaScript version of each
   (an empty shell that fetches its body and draws it), at
   ``--browser-concurrency``: pages/s, CPU seconds per page of the whole process
   tree (Chromium and extraction workers included) and the Chromium processes'
   memory. Targets: ``auto`` on server-rendered pages within 1.1x of ``direct``;
   ``browser`` at least 3 pages/s at concurrency 4; the JavaScript pages read
   correctly where ``direct`` reads nothing;
4. the library (``--part library``): ``browse``'s fetch + extraction against the
   trafilatura library used as its documentation shows (httpx, then
   ``trafilatura.extract`` with its defaults, in one process), alternating passes:
   pages/s and CPU per page of the whole process tree, and quality. Targets:
   >= 0.7x the library's pages/s at concurrency 8, <= 1.3x its CPU per page
   (``--extract-workers N`` sets browse's worker count, default the server's);
5. extraction (``--part extraction``): trafilatura as ``extract_html`` calls it
   against its fallback mode, CPU per page and quality.

The reference lives in its own virtual environment (``.venv-ref-fetch``,
created with pip on first run) so that nothing it needs touches ``.venv``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REF_VENV = ROOT / ".venv-ref-fetch"
REF_PYTHON = REF_VENV / "bin" / "python"


def ensure_reference_venv() -> None:
    if REF_PYTHON.exists():
        return
    print(f"creating {REF_VENV} with mcp-server-fetch (first run only)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(REF_VENV)], check=True)
    subprocess.run([str(REF_PYTHON), "-m", "pip", "install", "--quiet", "mcp-server-fetch"], check=True)


def reference_version() -> str:
    out = subprocess.run(
        [str(REF_PYTHON), "-c", "from importlib.metadata import version; print(version('mcp-server-fetch'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@contextlib.contextmanager
def serve_pages(pages: Path) -> Iterator[str]:
    """Serve the pages in ``pages`` over HTTP on a free loopback port (the test suite's loopback server)."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.support.loopback import serve_app

    files = {p.name: p.read_bytes() for p in pages.glob("*.html")}

    async def page(request: Any) -> Response:
        body = files.get(request.path_params["name"])
        if body is None:
            return Response("not found", status_code=404)
        return Response(body, media_type="text/html; charset=utf-8")

    with serve_app(Starlette(routes=[Route("/{name}", page)])) as base:
        yield base


_MARKUP = re.compile(r"[*_`#>\\|]+")


def normalize(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(_MARKUP.sub(" ", text).casefold().split())


def score(outputs: dict[str, str], annotations: dict[str, Any], base: str) -> dict[str, float]:
    kept = keep_total = dropped = drop_total = 0
    for name, note in annotations.items():
        text = normalize(outputs.get(f"{base}/{name}", ""))
        kept += sum(normalize(s) in text for s in note["keep"])
        keep_total += len(note["keep"])
        dropped += sum(normalize(s) not in text for s in note["drop"])
        drop_total += len(note["drop"])
    return {
        "keep": kept / keep_total,
        "drop": dropped / drop_total,
        "overall": (kept + dropped) / (keep_total + drop_total),
    }


def run_worker(
    python: Path, impl: str, urls: list[str], concurrency: int, rounds: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(urls))
        out = Path(tmp) / "out.json"
        cmd = [
            str(python),
            "-m",
            "perf._browse_worker",
            "--impl",
            impl,
            "--urls",
            str(urls_file),
            "--concurrency",
            str(concurrency),
            "--rounds",
            str(rounds),
            "--out",
            str(out),
        ]
        done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{impl} worker failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


async def run_mcp(
    params: Any, tool: str, args_for: Any, urls: list[str], concurrency: int, rounds: int
) -> dict[str, Any]:
    from mcp import Client
    from mcp.client.stdio import stdio_client

    # The servers' own request logs would drown the figures.
    with Path(os.devnull).open("w") as quiet:  # noqa: ASYNC230 - opening /dev/null does not block
        async with Client(stdio_client(params, errlog=quiet)) as client:
            return await _drive(client, tool, args_for, urls, concurrency, rounds)


async def _drive(
    client: Any, tool: str, args_for: Any, urls: list[str], concurrency: int, rounds: int
) -> dict[str, Any]:
    """The MCP twin of ``_browse_worker.run``: same passes, same failure counting, same result shape."""
    import anyio

    from perf._browse_worker import measurement

    errors: dict[str, int] = {}

    async def attempt(url: str) -> str | None:
        try:
            result = await client.call_tool(tool, args_for(url))
        except Exception as exc:  # noqa: BLE001 - one bad page must not end the whole measurement
            kind = type(exc).__name__
        else:
            text = "\n".join(b.text for b in result.content if getattr(b, "type", "") == "text")
            if not result.is_error:
                return text
            kind = "tool error"
        errors[kind] = errors.get(kind, 0) + 1
        return None

    sample = {url: await attempt(url) for url in urls}  # warm-up pass, also the quality sample
    limiter = anyio.CapacityLimiter(concurrency)
    timed: list[bool] = []

    async def one(url: str) -> None:
        async with limiter:
            timed.append(await attempt(url) is not None)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(rounds):
            for url in urls:
                tg.start_soon(one, url)
    return measurement(sample, timed, errors, time.perf_counter() - started)


def mcp_comparison(urls: list[str], concurrency: int, rounds: int) -> tuple[dict[str, Any], dict[str, Any]]:
    import anyio
    from mcp.client.stdio import StdioServerParameters

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "GEN_SEARCHER_FETCH__ALLOW_PRIVATE_NETWORKS": "true",
            "GEN_SEARCHER_FETCH__RESPECT_ROBOTS": "false",
            "GEN_SEARCHER_CACHE__MODE": "off",
            "GEN_SEARCHER_CACHE__PATH": str(Path(tmp) / "cache.db"),
            "GEN_SEARCHER_IMAGES__DIR": str(Path(tmp) / "images"),
            "GEN_SEARCHER_SUMMARY__TEXT_BUDGET": "1000000",
            "GEN_SEARCHER_SEARCH__BACKEND": "ddgs",
        }
        for name in ("GEN_SEARCHER_SUMMARY__BASE_URL", "GEN_SEARCHER_SUMMARY__MODEL", "GEN_SEARCHER_CONFIG"):
            env.pop(name, None)
        ours = StdioServerParameters(
            command=sys.executable, args=["-m", "mcp_server", "serve", "--transport", "stdio"], env=env, cwd=str(ROOT)
        )
        ref = StdioServerParameters(
            command=str(REF_PYTHON),
            args=["-m", "mcp_server_fetch", "--ignore-robots-txt", "--allow-private-ips"],
            env=dict(os.environ),
        )
        ours_result = anyio.run(
            run_mcp, ours, "browse", lambda u: {"url": u, "goal": "main content"}, urls, concurrency, rounds
        )
        ref_result = anyio.run(
            run_mcp, ref, "fetch", lambda u: {"url": u, "max_length": 999_999}, urls, concurrency, rounds
        )
    return ours_result, ref_result


def report(title: str, rows: list[tuple[str, dict[str, Any]]], annotations: dict[str, Any], base: str) -> None:
    """One table; the first row is ours, every other row a reference it is compared with."""
    print(f"\n== {title} ==")
    print(f"{'tool':<44}{'pages/s':>9}{'failed':>10}{'keep':>8}{'drop':>8}{'overall':>9}")
    figures = []
    for label, result in rows:
        rate = (result["pages"] - result["failed"]) / result["seconds"]  # pages read, not pages tried
        quality = score(result["outputs"], annotations, base)
        figures.append((label, rate, quality))
        failed = f"{result['failed']}/{result['pages']}"
        print(
            f"{label:<44}{rate:>9.1f}{failed:>10}"
            f"{quality['keep']:>8.1%}{quality['drop']:>8.1%}{quality['overall']:>9.1%}"
        )
    for label, result in rows:
        if result["errors"]:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(result["errors"].items()))
            print(
                f"  {label}: {result['warmup_failed']} of {len(result['outputs'])} sample pages failed "
                f"(scored as missing), {result['failed']} timed; errors: {kinds}"
            )
    _, ours_rate, ours_q = figures[0]
    for label, rate, quality in figures[1:]:
        ratio = f"{ours_rate / rate:.2f}x" if rate else "n/a (every page failed)"
        print(
            f"vs {label}: throughput {ratio} (target >= 2x), "
            f"quality {ours_q['overall']:.1%} vs {quality['overall']:.1%} (target: >= reference)"
        )


# -- page fetchers: direct, browser and auto on server-rendered and JavaScript pages ---------------------

SHELL = """<html><head><title>{title}</title></head><body><div id="root">Loading…</div><script>
fetch('/content/{name}').then(r => r.text()).then(h => {{ document.getElementById('root').innerHTML = h; }});
</script></body></html>"""


def js_shells(pages: Path, annotations: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A JavaScript version of every page: an empty shell that fetches the page's body and draws it.

    Returns the shells (``js-NAME``) and the bodies they fetch (``/content/NAME``).
    """
    shells, bodies = {}, {}
    for name in annotations:
        page = (pages / name).read_text(encoding="utf-8")
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        body = re.search(r"<body[^>]*>(.*)</body>", page, re.S)
        shells[f"js-{name}"] = SHELL.format(title=title.group(1) if title else name, name=name).encode()
        bodies[name] = (body.group(1) if body else page).encode()
    return shells, bodies


@contextlib.contextmanager
def serve_mix(pages: Path, annotations: dict[str, Any]) -> Iterator[str]:
    """The server-rendered pages at ``/NAME``, their JavaScript shells at ``/js-NAME``, bodies at ``/content/NAME``."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.support.loopback import serve_app

    shells, bodies = js_shells(pages, annotations)
    files = {**{p.name: p.read_bytes() for p in pages.glob("*.html")}, **shells}

    async def page(request: Any) -> Response:
        body = files.get(request.path_params["name"])
        return Response(body, media_type="text/html; charset=utf-8") if body else Response(status_code=404)

    async def content(request: Any) -> Response:
        body = bodies.get(request.path_params["name"])
        return Response(body, media_type="text/html; charset=utf-8") if body else Response(status_code=404)

    routes = [Route("/content/{name}", content), Route("/{name}", page)]
    with serve_app(Starlette(routes=routes)) as base:
        yield base


def fetchers_comparison(pages: Path, annotations: dict[str, Any], args: argparse.Namespace) -> None:
    """pages/s, CPU s/page and quality of direct, browser and auto (and the reference) on both kinds of page."""
    js_annotations = {f"js-{name}": note for name, note in annotations.items()}
    concurrency = args.browser_concurrency
    print(
        f"\n== page fetchers: {len(annotations)} server-rendered pages and their {len(annotations)} JavaScript "
        f"versions, concurrency {concurrency}, {args.rounds} rounds =="
    )
    print(
        f"{'fetcher':<34}{'pages':>7}{'pages/s':>9}{'CPU s/page':>12}{'failed':>9}{'keep':>8}{'drop':>8}"
        f"{'overall':>9}  browser memory"
    )
    with serve_mix(pages, annotations) as base:
        rates: dict[tuple[str, str], float] = {}
        cpus: dict[tuple[str, str], float] = {}
        for kind, notes in (("server-rendered", annotations), ("JavaScript", js_annotations)):
            urls = [f"{base}/{name}" for name in notes]
            for impl in ("direct", "auto", "browser", *(() if args.no_reference else ("ref",))):
                python = REF_PYTHON if impl == "ref" else Path(sys.executable)
                result = run_worker(python, impl, urls, concurrency, args.rounds)
                read = result["pages"] - result["failed"]
                rate = read / result["seconds"]
                rates[(impl, kind)] = rate
                cpus[(impl, kind)] = result.get("cpu_s", 0.0) / max(read, 1)
                quality = score(result["outputs"], notes, base)
                cpu = f"{result['cpu_s'] / max(read, 1):.3f}" if "cpu_s" in result else "-"
                memory = result.get("memory")
                mem = (
                    f"{memory['processes']} processes, RSS {memory['rss_mib']:.0f} MiB, PSS {memory['pss_mib']:.0f} MiB"
                    if memory
                    else "-"
                )
                label = f"{'mcp-server-fetch' if impl == 'ref' else impl} / {kind}"
                print(
                    f"{label:<34}{result['pages']:>7}{rate:>9.1f}{cpu:>12}{result['failed']:>9}"
                    f"{quality['keep']:>8.1%}{quality['drop']:>8.1%}{quality['overall']:>9.1%}  {mem}"
                )
        ratio = rates[("direct", "server-rendered")] / rates[("auto", "server-rendered")]
        cpu_ratio = cpus[("auto", "server-rendered")] / max(cpus[("direct", "server-rendered")], 1e-9)
        print(
            f"auto on server-rendered pages: {ratio:.2f}x the time of direct, {cpu_ratio:.2f}x its CPU "
            "(target <= 1.1x; on a shared machine the wall-clock ratio swings with the load: compare CPU); "
            f"browser: {rates[('browser', 'JavaScript')]:.1f} JavaScript pages/s at concurrency {concurrency} "
            "(target >= 3)"
        )


def library_comparison(pages: Path, annotations: dict[str, Any], args: argparse.Namespace) -> None:
    """``browse``'s fetch + extraction against the trafilatura library (httpx + ``trafilatura.extract``, defaults,
    one process), alternating passes so a busy machine slows both alike; medians of pages/s and CPU per page."""
    from search_tools.extract_pool import ExtractLimits

    passes = 3
    workers = ExtractLimits(workers=args.extract_workers).worker_count
    print(
        f"\n== browse vs the trafilatura library: {len(annotations)} pages x {args.rounds} rounds, concurrency "
        f"{args.concurrency}, {passes} alternating passes, {os.cpu_count()} cores, {workers} extraction workers =="
    )
    env = {"GEN_SEARCHER_FETCH__EXTRACT_WORKERS": str(args.extract_workers)}
    with serve_pages(pages) as base:
        urls = [f"{base}/{name}" for name in annotations]
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "library": []}
        for _ in range(passes):
            for impl in runs:
                runs[impl].append(run_worker(Path(sys.executable), impl, urls, args.concurrency, args.rounds, env))
    figures = {}
    print(f"{'side':<34}{'pages/s':>9}{'CPU ms/page':>13}{'failed':>9}{'keep':>8}{'drop':>8}{'overall':>9}")
    for impl, results in runs.items():
        rates = sorted((r["pages"] - r["failed"]) / r["seconds"] for r in results)
        cpus = sorted(r["cpu_s"] / max(r["pages"] - r["failed"], 1) for r in results)
        rate, cpu = rates[len(rates) // 2], cpus[len(cpus) // 2]
        quality = score(results[0]["outputs"], annotations, base)
        figures[impl] = (rate, cpu)
        label = "gen-searcher browse (fetch+extract)" if impl == "ours" else "trafilatura library (defaults)"
        failed = sum(r["failed"] for r in results)
        print(
            f"{label:<34}{rate:>9.1f}{cpu * 1000:>13.1f}{failed:>9}"
            f"{quality['keep']:>8.1%}{quality['drop']:>8.1%}{quality['overall']:>9.1%}"
        )
    (ours_rate, ours_cpu), (lib_rate, lib_cpu) = figures["ours"], figures["library"]
    print(
        f"browse: {ours_rate / lib_rate:.2f}x the library's pages/s (target >= 0.7x), "
        f"{ours_cpu / lib_cpu:.2f}x its CPU per page (target <= 1.3x)"
    )


def extraction_comparison(pages: Path, annotations: dict[str, Any]) -> None:
    """trafilatura's fast mode (``fast=True``) against its fallback mode (``fast=False``: readability and jusText
    fallbacks compared, what ``extract_html`` uses), same options, alternating passes (medians)."""
    import trafilatura

    options: dict[str, Any] = dict(
        include_comments=False, include_tables=True, include_formatting=True, include_links=False, include_images=False
    )
    docs = {name: (pages / name).read_text(encoding="utf-8") for name in annotations}
    print(f"\n== extraction: trafilatura fast vs fallback mode, {len(docs)} pages, one thread ==")
    timings: dict[bool, list[float]] = {True: [], False: []}
    outputs: dict[bool, dict[str, str]] = {True: {}, False: {}}
    for _ in range(6):  # alternating, so a busy machine slows both alike
        for fast in (True, False):
            started = time.process_time()
            for name, html in docs.items():
                doc = trafilatura.bare_extraction(html, url=f"http://x/{name}", fast=fast, **options)
                outputs[fast][f"http://x/{name}"] = (doc.text if doc is not None else "") or ""
            timings[fast].append((time.process_time() - started) / len(docs))
    for label, fast in (("fast", True), ("fallback (extract_html)", False)):
        per_page = sorted(timings[fast])[len(timings[fast]) // 2]
        quality = score(outputs[fast], annotations, "http://x")
        print(
            f"{label:<24} {per_page * 1000:7.1f} ms CPU/page  keep {quality['keep']:.1%}  drop {quality['drop']:.1%}"
            f"  overall {quality['overall']:.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-mcp", action="store_true", help="only the pipeline comparison")
    parser.add_argument(
        "--part",
        choices=["all", "pipeline", "library", "fetchers", "extraction"],
        default="all",
        help="pipeline: ours vs the reference; library: ours vs trafilatura; fetchers: direct, browser, auto on "
        "server-rendered and JavaScript "
        "pages; extraction: trafilatura's fast vs fallback mode",
    )
    parser.add_argument("--browser-concurrency", type=int, default=4, help="pages at once in the fetchers part")
    parser.add_argument("--no-reference", action="store_true", help="fetchers part without mcp-server-fetch")
    parser.add_argument(
        "--extract-workers",
        type=int,
        default=0,
        help="library part: browse's extraction workers (fetch.extract_workers; 0: the server's default)",
    )
    args = parser.parse_args()
    from perf.data.make_pages import build_pages

    if args.part in ("all", "pipeline", "fetchers") and not (args.part == "fetchers" and args.no_reference):
        ensure_reference_venv()
    with tempfile.TemporaryDirectory(prefix="browse-pages-") as tmp:
        annotations = build_pages(Path(tmp))
        if args.part in ("all", "library"):
            library_comparison(Path(tmp), annotations, args)
        if args.part in ("all", "pipeline"):
            compare(Path(tmp), annotations, args)
        if args.part in ("all", "fetchers"):
            fetchers_comparison(Path(tmp), annotations, args)
        if args.part in ("all", "extraction"):
            extraction_comparison(Path(tmp), annotations)


def compare(pages: Path, annotations: dict[str, Any], args: argparse.Namespace) -> None:
    """Serve the page set on loopback and print both comparisons."""
    print(
        f"{len(annotations)} annotated pages, concurrency {args.concurrency}, {args.rounds} rounds; "
        f"reference mcp-server-fetch {reference_version()}"
    )
    with serve_pages(pages) as base:
        urls = [f"{base}/{name}" for name in annotations]
        ours = run_worker(Path(sys.executable), "ours", urls, args.concurrency, args.rounds)
        ref = run_worker(REF_PYTHON, "ref", urls, args.concurrency, args.rounds)
        # readabilipy runs Readability.js when `node` is on PATH, else its pure-Python extractor: measure both
        no_node = run_worker(REF_PYTHON, "ref", urls, args.concurrency, args.rounds, env={"PATH": "/nonexistent"})
        rows = [
            ("gen-searcher browse (fetch+extract)", ours),
            ("mcp-server-fetch, Readability.js via Node", ref),
            ("mcp-server-fetch, no Node (pure Python)", no_node),
        ]
        report("pipeline: fetch + extraction, in-process", rows, annotations, base)
        if not args.skip_mcp:
            ours_mcp, ref_mcp = mcp_comparison(urls, args.concurrency, args.rounds)
            rows = [("gen-searcher browse tool", ours_mcp), ("mcp-server-fetch fetch tool (Node)", ref_mcp)]
            report("tool over MCP stdio (same client, same concurrency)", rows, annotations, base)


if __name__ == "__main__":
    main()
