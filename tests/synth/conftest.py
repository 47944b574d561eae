"""Fixtures of the data-pipeline tests, shared by the whole session (the suite runs on 2 cores).

* ``fakes``: the scripted teacher, judge, SFT policy and images API (:mod:`synth.smoke_services`)
  on 127.0.0.1, request logs cleared before every test;
* ``tools``: the real tool server (``mcp_server``'s production app) over a local index of the
  tiny web, its ``render`` tool on the ``openai`` backend pointed at the scripted images API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from gen_searcher_core.loopback import serve_in_thread
from synth.settings import ServiceSettings, SynthSettings
from synth.smoke_services import ScriptedServices
from tests.support.loopback import serve_app
from tests.support.tool_server import ToolServer, run_tool_server
from verl_recipes.cpu.smoke_servers import write_web


@dataclass
class Fakes:
    services: ScriptedServices
    base: str

    def url(self, name: str) -> str:
        return f"{self.base}/{name}/v1"

    def count(self) -> dict[str, int]:
        return self.services.count()

    def log(self, name: str) -> list[dict[str, Any]]:
        return list(self.services.services[name].requests)


@pytest.fixture(scope="session")
def _fakes() -> Iterator[Fakes]:
    services = ScriptedServices()
    with serve_app(services.app()) as base:  # long keep-alive: a reused idle connection is never cut
        yield Fakes(services, base)


@pytest.fixture
def fakes(_fakes: Fakes) -> Fakes:
    _fakes.services.reset()
    return _fakes


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory, _fakes: Fakes) -> Iterator[ToolServer]:
    from search_tools.index import build_index

    root = tmp_path_factory.mktemp("synth-tools")
    web = write_web(root / "web")
    with serve_in_thread(Starlette(routes=[Mount("/", StaticFiles(directory=web))])) as web_url:
        build_index(web, root / "index.db", base_url=web_url + "/")
        render = {"backend": "openai", "url": _fakes.url("images"), "model": "scripted"}
        with run_tool_server(root, index=root / "index.db", render=render) as server:
            yield server


def settings_for(fakes: Fakes, tools_url: str | None, **sections: dict[str, Any]) -> SynthSettings:
    """Small settings: 2 teacher rollouts, 2 policy rollouts, every service scripted."""

    def service(name: str) -> ServiceSettings:
        return ServiceSettings(url=fakes.url(name), model=f"scripted-{name}", max_attempts=1, timeout_s=60)

    base = SynthSettings(
        teacher=service("teacher"), judge=service("judge"), policy=service("policy"), tools_url=tools_url
    )
    update: dict[str, Any] = {
        "trajectories": base.trajectories.model_copy(update={"rollouts": 2}),
        "calibrate": base.calibrate.model_copy(update={"rollouts": 2}),
    }
    for name, values in sections.items():
        update[name] = update.get(name, getattr(base, name)).model_copy(update=values)
    return base.model_copy(update=update)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
