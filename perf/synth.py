"""Throughput of ``synth run`` with slow scripted services: items per hour and render-service utilisation.

    .venv/bin/python -m perf.synth [--items 24] [--scale 0.05] [--render-capacity 4]

The scripted services of :mod:`synth.smoke_services` answer with the latencies of the
real ones, multiplied by ``--scale`` so the run takes seconds (teacher 2 s a turn,
render 20 s, judge 3 s, policy 2 s a turn), and each serves at most its capacity at
once (teacher 16, judge 8, policy 16, render ``--render-capacity``). The real tool
server (local index over the tiny web) renders through its ``openai`` backend on the
scripted images API, as a hosted generator would be used.

Two runs side by side: the pipeline as shipped (prompts overlap across stages, up to
``max_items_in_flight``) and one prompt at a time (``max_items_in_flight = 1``, stages in
series). Printed: wall time, items/hour at real latencies (wall / scale), and how busy
the render service was between its first and last request (busy time / capacity / span).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gen_searcher_core.loopback import serve_in_thread
from search_tools.index import build_index
from synth.journal import RunFolder
from synth.run import run_synth
from synth.settings import ServiceSettings, SynthSettings
from synth.smoke_services import ScriptedServices, ServiceLog
from tests.support.loopback import serve_app
from tests.support.tool_server import run_tool_server
from verl_recipes.cpu.smoke_servers import write_web

#: Real latencies (seconds) and capacities of the services.
LATENCY = {"teacher": 2.0, "judge": 3.0, "policy": 2.0, "images": 20.0}
CAPACITY = {"teacher": 16, "judge": 8, "policy": 16}

SUBJECTS = ["bridge", "tower", "harbour", "orchard", "temple", "stadium", "glacier", "market", "station", "mural"]
CATEGORIES = ["architecture", "geography", "culture", "sports", "art", "engineering"]


def prompts(path: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        subject = f"{SUBJECTS[i % len(SUBJECTS)]} {i}"
        prompt = f"Draw the Velmora {subject} number {i * 7919 % 1000} as it stood in {1900 + i} at dusk."
        rows.append({"id": f"p{i}", "prompt": prompt, "category": CATEGORIES[i % 6], "subjects": [subject]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def utilisation(log: ServiceLog, capacity: int) -> tuple[float, float]:
    """(busy share between the first start and the last end, span in seconds)."""
    if not log.intervals:
        return 0.0, 0.0
    start = min(s for s, _ in log.intervals)
    end = max(e for _, e in log.intervals)
    busy = sum(e - s for s, e in log.intervals)
    return busy / (capacity * (end - start)), end - start


def one_run(work: Path, items: int, scale: float, render_capacity: int, in_flight: int) -> dict[str, Any]:
    services = ScriptedServices(
        **{
            name: ServiceLog(delay_s=LATENCY[name] * scale, capacity=CAPACITY.get(name, render_capacity))
            for name in LATENCY
        }
    )
    with serve_app(services.app()) as base:
        web = write_web(work / "web")
        with serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as web_url:
            build_index(web, work / "index.db", base_url=web_url + "/")
            render = {"backend": "openai", "url": f"{base}/images/v1", "model": "scripted"}
            with run_tool_server(work, index=work / "index.db", render=render) as tools:

                def service(name: str) -> ServiceSettings:
                    return ServiceSettings(
                        url=f"{base}/{name}/v1", model=name, max_concurrency=CAPACITY[name], max_attempts=3
                    )

                settings = SynthSettings(
                    teacher=service("teacher"),
                    judge=service("judge"),
                    policy=service("policy"),
                    tools_url=tools.url,
                    max_items_in_flight=in_flight,
                )
                settings = settings.model_copy(
                    update={
                        "trajectories": settings.trajectories.model_copy(update={"rollouts": 2}),
                        "calibrate": settings.calibrate.model_copy(update={"rollouts": 2}),
                    }
                )
                started = time.perf_counter()
                result = run_synth(
                    RunFolder(work / "run"), settings, [prompts(work / "p.jsonl", items)], progress=False
                )
                wall = time.perf_counter() - started
    busy, span = utilisation(services.services["images"], render_capacity)
    return {
        "in_flight": in_flight,
        "wall_s": wall,
        "items_per_hour": items / (wall / scale) * 3600,
        "render_busy": busy,
        "render_span_s": span,
        "renders": len(services.services["images"].requests),
        "exported": result.shape["stages"]["export"]["kept"],
        "failure": result.failure,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--scale", type=float, default=0.05, help="latency multiplier (1 = real latencies)")
    parser.add_argument("--render-capacity", type=int, default=4, help="renders served at once (GPUs)")
    args = parser.parse_args()
    rows = []
    for in_flight in (32, 1):
        with tempfile.TemporaryDirectory(prefix="perf-synth-") as tmp:
            rows.append(one_run(Path(tmp), args.items, args.scale, args.render_capacity, in_flight))
    print(f"{args.items} prompts, k=2 teacher rollouts, n=2 policy rollouts; latencies x{args.scale}; ")
    print(f"render capacity {args.render_capacity}, teacher 16, judge 8, policy 16")
    head = ("items in flight", "wall s", "items/h (real)", "render busy", "renders", "exported")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (16, 8, 15, 12, 8, 9), strict=True)))
    for r in rows:
        print(
            f"{r['in_flight']:>16} {r['wall_s']:>8.1f} {r['items_per_hour']:>15.0f} {r['render_busy']:>11.0%} "
            f"{r['renders']:>8} {r['exported']:>9}" + (f"  FAILED: {r['failure']}" if r["failure"] else "")
        )
    print(f"overlap speed-up: {rows[1]['wall_s'] / rows[0]['wall_s']:.1f}x")


if __name__ == "__main__":
    main()
