"""Run the demo: sample web, local index, scripted models, the real tool server and benchmark code, three pages.

Everything listens on 127.0.0.1 and lives under one output folder:

* ``web/`` the sample web (served while the demo runs), ``index.db`` its local index,
  ``demo.toml`` the tool server's settings (local backend, loopback pages allowed);
* ``episode/`` one ``gen-searcher run`` of the scripted policy: ``trace.html``;
* ``scripted-policy/`` and ``baseline/`` two KnowGen runs over the demo's items:
  ``report.html`` each; ``compare/compare.html`` puts them side by side.

The tool server is never imported: ``gen-searcher run`` and the benchmark start it as
``gen-searcher serve --transport stdio``, the way any MCP client would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmark.demo.sample_web import ITEMS, draw_picture, page_named, write_sample_web
from benchmark.demo.scripted import (
    JUDGE_MODEL,
    POLICY_MODEL,
    RENDER_MODEL,
    images_app,
    judge_app,
    notice_for,
    policy_app,
)
from gen_searcher_core.loopback import gen_searcher_command, serve_in_thread

MARKER = ".gen-searcher-demo"  # a folder holding this was written by the demo and may be replaced by it
RENDER_SIDE = 64  # the tiny pipeline needs multiples of 32; small keeps CPU renders quick
Echo = Callable[[str], None]


class DemoError(RuntimeError):
    """The demo could not run (a folder in the way, a step that failed); the message says which."""


@dataclass(frozen=True)
class DemoPages:
    """What the demo wrote for people to open."""

    trace: Path
    report: Path
    baseline_report: Path
    compare: Path
    notice: str


def render_extra_installed() -> bool:
    """Whether torch, transformers and diffusers are importable (the ``render`` extra)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers", "diffusers"))


def prepare_folder(out: Path) -> None:
    """Use ``out``: new, empty, or an earlier demo's folder (replaced); anything else is refused."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DemoError(f"{out} exists and was not written by gen-searcher demo; pick another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by gen-searcher demo; the next demo run replaces this folder\n")


def write_items(data_dir: Path) -> Path:
    """The demo's KnowGen items (``items.json``) and their ground-truth pictures."""
    rows = []
    for item_id, prompt, stem in ITEMS:
        gt = draw_picture(page_named(stem), data_dir / "gt" / f"{item_id}.png", size=(384, 288))
        rows.append(
            {"id": item_id, "prompt": prompt, "meta": {"category": "architecture"}, "gt_image": f"gt/{gt.name}"}
        )
    path = data_dir / "items.json"
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def write_tool_settings(out: Path, index: Path) -> Path:
    """``demo.toml``: the local index, cache and image store under ``out``, loopback pages allowed."""
    path = out / "demo.toml"
    path.write_text(
        '[server]\nlog_level = "WARNING"\n'
        f'[search]\nbackend = "local"\nindex = {json.dumps(str(index))}\n'
        f"[cache]\npath = {json.dumps(str(out / 'cache.db'))}\n"
        f"[images]\ndir = {json.dumps(str(out / 'images'))}\n"
        "[fetch]\nallow_private_networks = true\nrespect_robots = false\n",
        encoding="utf-8",
    )
    return path


@contextlib.contextmanager
def hermetic_environment() -> Iterator[dict[str, str]]:
    """Leave the user's ``GEN_SEARCHER_*`` variables out while the demo runs (they would beat demo.toml)."""
    saved = {name: value for name, value in os.environ.items() if name.upper().startswith("GEN_SEARCHER_")}
    for name in saved:
        del os.environ[name]
    try:
        yield dict(os.environ)
    finally:
        os.environ.update(saved)


def _run(command: list[str], env: dict[str, str], what: str, echo: Echo) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        echo(f"  {line}")
    if done.returncode != 0:
        raise DemoError(f"{what} failed (exit {done.returncode}); its output is above")


def _tiny_pipeline(models: Path, echo: Echo) -> Path:
    from render_tools.tiny_pipeline import build_tiny_qwen_image_edit

    folder = models / "tiny-qwen-image-edit-plus"
    if not (folder / "model_index.json").is_file():
        echo("building a tiny random-weight Qwen-Image-Edit pipeline (no download; it draws noise)…")
        build_tiny_qwen_image_edit(models)
    return folder


def run_demo(out: Path, *, echo: Echo, tiny_render: bool | None = None, models: Path | None = None) -> DemoPages:
    """Run the whole demo into ``out`` and return its pages.

    ``tiny_render``: render with the tiny diffusers pipeline (default: when the render
    extra is installed), else with the scripted images API. ``models``: where the tiny
    pipeline is kept between runs (default ``out/models``).
    """
    from benchmark.cli import start_run
    from benchmark.cli_options import GenerationOptions, JudgeOptions, RunOptions
    from benchmark.datasets import load_knowgen
    from benchmark.report import compare_runs

    use_tiny = render_extra_installed() if tiny_render is None else tiny_render
    renderer = (
        "a tiny random-weight Qwen-Image-Edit pipeline (diffusers; it draws noise)"
        if use_tiny
        else f"{RENDER_MODEL}, an images API on 127.0.0.1 that returns the first reference softened (not a model)"
    )
    notice = notice_for(renderer)
    prepare_folder(out)
    echo(notice)
    web = write_sample_web(out / "web")
    items = load_knowgen(write_items(out / "data"))
    pipeline = _tiny_pipeline(models or out / "models", echo) if use_tiny else None
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    with (
        hermetic_environment() as environ,
        serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as web_url,
        serve_in_thread(policy_app()) as model_url,
        serve_in_thread(judge_app()) as judge_url,
        serve_in_thread(images_app()) as images_url,
    ):
        env = {**environ, "COLUMNS": "160"}  # the subcommands' progress lines, unwrapped
        echo(f"sample web on {web_url}/, scripted policy on {model_url}/v1, scripted judge on {judge_url}/v1")
        index = out / "index.db"
        gs = gen_searcher_command()
        _run([*gs, "index", "build", str(web), "--out", str(index), "--base-url", web_url + "/"], env, "index", echo)
        settings = write_tool_settings(out, index)
        echo("one episode of the scripted policy through the tool server (gen-searcher run):")
        episode = out / "episode"
        command = [*gs, "run", ITEMS[0][1], "--model-url", model_url + "/v1", "--model", POLICY_MODEL]
        command += ["--config", str(settings), "--out", str(episode), "--no-render", "--notice", notice]
        _run(command, env, "gen-searcher run", echo)
        judge = JudgeOptions(judge_url=judge_url + "/v1", judge_model=JUDGE_MODEL, judge_concurrency=2)
        runs = []
        for name, policy, model in (
            ("scripted-policy", model_url + "/v1", POLICY_MODEL),
            ("baseline", "baseline", None),
        ):
            echo(f"KnowGen run {name!r} ({len(items)} items):")
            gen = GenerationOptions(
                policy=policy,
                policy_model=model,
                width=RENDER_SIDE,
                height=RENDER_SIDE,
                seed=7,
                concurrency=1,
                config=settings,
                render="diffusers" if pipeline else "openai",
                render_edit_model=str(pipeline) if pipeline else None,
                render_url=None if pipeline else images_url + "/v1",
                steps=2 if pipeline else None,
            )
            start_run(
                benchmark="knowgen",
                items=items,
                out=out / name,
                run_config={"data": str(out / "data" / "items.json"), "notice": notice, "renderer": renderer},
                failures="zero",
                wise_protocol=None,
                judge=judge,
                run=RunOptions(progress=False),
                gen=gen,
            )
            runs.append(out / name)
        compare_runs(runs, out / "compare")
    pages = DemoPages(
        trace=episode / "trace.html",
        report=runs[0] / "report.html",
        baseline_report=runs[1] / "report.html",
        compare=out / "compare" / "compare.html",
        notice=notice,
    )
    missing = [str(p) for p in (pages.trace, pages.report, pages.baseline_report, pages.compare) if not p.is_file()]
    if missing:
        raise DemoError(f"the demo did not write {', '.join(missing)}")
    return pages
