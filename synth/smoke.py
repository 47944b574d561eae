"""``gen-searcher synth smoke``: the whole pipeline on this machine in a minute, with no keys.

It starts, on 127.0.0.1: the scripted teacher, judge, SFT policy and images API
(:mod:`synth.smoke_services`), the tiny web of ``train smoke`` indexed with
``gen-searcher index build``, and ``gen-searcher serve`` over that index with the
``openai`` render backend pointed at the scripted images API. It then runs every stage
on a dozen prompts (some scripted to fail in each way a stage drops), exports, and
returns the funnel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from gen_searcher_core.loopback import serve_in_thread
from synth.export import export
from synth.journal import RunFolder
from synth.manifest import read_manifest
from synth.run import run_synth
from synth.services import local_tool_server
from synth.settings import ServiceSettings, SynthSettings
from synth.smoke_services import ScriptedServices
from verl_recipes.cpu.smoke_servers import write_web

SMOKE_PROMPTS = [
    ("Draw the Quorvath Bridge in Velmora at dusk with lanterns.", "architecture", "Quorvath Bridge"),
    ("Paint the Velmora paper lanterns festival by the river.", "culture", "Velmora lanterns"),
    ("Show the copper-green towers of the old Kessmark observatory under stars.", "astronomy", "Kessmark observatory"),
    ("Illustrate the Brannoch glass orchid in bloom, botanical plate style.", "biology", "Brannoch orchid"),
    ("A poster of the Tavi Hollow marathon with its 2026 route map.", "sports", "Tavi Hollow marathon"),
    ("Show the Orsk tram depot mural as painted in 2025 [mixed].", "art", "Orsk mural"),
    ("Draw the Lumen Vale ferry crossing at noon [noanswer].", "geography", "Lumen Vale ferry"),
    ("Render the Hadley forge emblem exactly [lowscore].", "industry", "Hadley forge"),
    ("Draw a red apple on a table [easy].", "culture", "red apple"),
    ("Show the Corvin lighthouse in fog [copy].", "architecture", "Corvin lighthouse"),
    ("Draw the Quorvath Bridge in Velmora at dusk with lanterns!", "architecture", "Quorvath Bridge"),
    ("Paint the Ember Reach dam spillway in spring [hardrl].", "engineering", "Ember Reach dam"),
]


def write_prompts(path: Path) -> Path:
    rows = [
        {"id": f"smoke-{i:02d}", "prompt": p, "category": c, "subjects": [s], "facts": [f"{s} as it really looks"]}
        for i, (p, c, s) in enumerate(SMOKE_PROMPTS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tool_server_config(work: Path, web_url: str, images_url: str) -> Path:
    """Settings of the smoke's tool server: local index, its own cache and store, the scripted images API."""
    web = write_web(work / "web")
    index = work / "index.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gen_searcher_core",
            "index",
            "build",
            str(web),
            "--out",
            str(index),
            "--base-url",
            web_url + "/",
        ],
        check=True,
        capture_output=True,
    )
    config = work / "tool-server.toml"
    config.write_text(
        '[server]\nlog_level = "WARNING"\n'
        f'[search]\nbackend = "local"\nindex = {json.dumps(str(index))}\n'
        f"[cache]\npath = {json.dumps(str(work / 'cache.db'))}\n"
        f"[images]\ndir = {json.dumps(str(work / 'images'))}\n"
        "[fetch]\nallow_private_networks = true\nrespect_robots = false\n"
        f'[render]\nbackend = "openai"\nurl = {json.dumps(images_url)}\nmodel = "scripted"\n',
        encoding="utf-8",
    )
    return config


def smoke_settings(base: str, tools_url: str) -> SynthSettings:
    def service(name: str) -> ServiceSettings:
        return ServiceSettings(url=f"{base}/{name}/v1", model=f"scripted-{name}", max_attempts=3)

    settings = SynthSettings(
        teacher=service("teacher"), judge=service("judge"), policy=service("policy"), tools_url=tools_url
    )
    return settings.model_copy(
        update={
            "trajectories": settings.trajectories.model_copy(update={"rollouts": 2}),
            "calibrate": settings.calibrate.model_copy(update={"rollouts": 2}),
            "gate": settings.gate.model_copy(update={"max_per_entity": 2}),
        }
    )


def run_smoke(work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the pipeline and export into ``work``; returns ``(funnel, exported rows per file)``."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    services = ScriptedServices()
    with serve_in_thread(services.app()) as base:
        (work / "tools" / "web").mkdir(parents=True, exist_ok=True)
        static = Starlette(routes=[Mount("/", StaticFiles(directory=work / "tools" / "web"))])
        with serve_in_thread(static) as web_url:
            config = tool_server_config(work / "tools", web_url, f"{base}/images/v1")
            with local_tool_server(work / "tools" / "tool-server.log", config) as tools_url:
                folder = RunFolder(work / "run")
                settings = smoke_settings(base, tools_url)
                result = run_synth(folder, settings, [write_prompts(work / "prompts.jsonl")], progress=False)
                if result.failure:
                    raise RuntimeError(result.failure)
                counts = export(folder, result.outcomes, work / "export", read_manifest(folder))
    return result.shape, counts
