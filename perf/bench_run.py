"""Throughput of the benchmark runner against loopback servers with fixed latency.

    .venv/bin/python -m perf.bench_run [--items 48] [--latency 0.1]

Prints, for one run each:
* judge-only K-Score throughput at judge concurrency 1 vs 8 vs 32 (ratio to 1);
* full generate+judge runs (renderer and judge each take ``--latency`` s) at
  item concurrency 1 vs 8 (ratio to 1), with the journals fsync'd per row;
* durable journal appends per second (one fsync per row).

Servers are the test suite's scripted judge and ``/generate`` render server on
127.0.0.1, so the numbers measure our client, scheduling and journaling overhead,
not a real model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import anyio

from benchmark.datasets import load_knowgen
from benchmark.generate import DirectGenerator, RenderOptions
from benchmark.journal import Journal
from benchmark.judge import JudgeClient, JudgeSettings
from benchmark.resumable_run import RunPaths, run_stages
from benchmark.rubrics import judge_kscore


def _settings(url: str, concurrency: int) -> JudgeSettings:
    return JudgeSettings(base_url=url, model="scripted", api_key=None, max_concurrency=concurrency)


async def _judge_only(url: str, gt: Path, n: int, concurrency: int) -> float:
    async with JudgeClient(_settings(url, concurrency)) as client:
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(lambda i=i: judge_kscore(client, prompt=f"item {i}", image=gt, gt_image=gt))
        return n / (time.perf_counter() - start)


async def _full_run(render_url: str, judge_url: str, data: Path, out: Path, concurrency: int) -> float:
    from render_tools.http_client import HttpRenderer

    items = load_knowgen(data)
    generator = DirectGenerator(HttpRenderer(render_url), RenderOptions(width=64, height=64))
    async with JudgeClient(_settings(judge_url, 32)) as judge:
        start = time.perf_counter()
        outcome = await run_stages(
            items,
            RunPaths(out),
            generator=generator,
            judge=judge,
            judge_item=lambda c, item, image: judge_kscore(c, prompt=item.prompt, image=image, gt_image=item.gt_image),
            concurrency=concurrency,
            judge_concurrency=32,
        )
        elapsed = time.perf_counter() - start
    await generator.aclose()
    assert outcome.generate.failed == 0 and outcome.judge.failed == 0
    return len(items) / elapsed


def _journal_rate(path: Path, n: int) -> float:
    journal = Journal(path)
    start = time.perf_counter()
    for i in range(n):
        journal.append_sync({"id": str(i), "ok": True, "score": 0.5, "judgement": {"rationale": "x" * 200}})
    return n / (time.perf_counter() - start)


def main() -> None:
    from tests.benchmark.helpers import RenderServer, make_knowgen, write_png
    from tests.support.loopback import serve_app
    from tests.support.scripted_judge import ScriptedJudge, kscore_reply, serve_judge

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per render and per judgement")
    args = parser.parse_args()

    judge = ScriptedJudge(default=kscore_reply(1, 0.5, 1, 1), delay_s=args.latency)
    render = RenderServer(delay_s=args.latency)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, serve_judge(judge) as judge_url, serve_app(render.app()) as render_url:
        root = Path(tmp)
        gt = write_png(root / "gt.png")
        for c in (1, 8, 32):
            results[f"judge_only_c{c}_items_per_s"] = anyio.run(_judge_only, judge_url, gt, args.items, c)
        data = make_knowgen(root / "data", args.items)
        for c in (1, 8):
            results[f"full_run_c{c}_items_per_s"] = anyio.run(
                _full_run, render_url, judge_url, data, root / f"run{c}", c
            )
        results["journal_durable_appends_per_s"] = _journal_rate(root / "j.jsonl", 500)
    base_j, base_f = results["judge_only_c1_items_per_s"], results["full_run_c1_items_per_s"]
    print(f"items={args.items} latency={args.latency}s (render and judge each)")
    for c in (1, 8, 32):
        v = results[f"judge_only_c{c}_items_per_s"]
        print(f"judge only, concurrency {c:>2}: {v:7.1f} items/s  x{v / base_j:.1f} vs concurrency 1")
    for c in (1, 8):
        v = results[f"full_run_c{c}_items_per_s"]
        print(f"generate+judge, concurrency {c}: {v:7.1f} items/s  x{v / base_f:.1f} vs concurrency 1")
    print(f"durable journal appends: {results['journal_durable_appends_per_s']:.0f} rows/s")
    print(json.dumps({k: round(v, 2) for k, v in results.items()}))


if __name__ == "__main__":
    main()
