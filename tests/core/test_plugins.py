"""One plugin loader and one clash rule for every entry-point group, and ``gen-searcher plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from gen_searcher_core.plugins import GROUPS, PluginError, load_plugin, providers

PLUGIN_MODULE = """
def register(app):
    @app.command("hello")
    def hello():
        print("hello from gs-demo-plugin")

def create(config):
    raise RuntimeError("never built in these tests")
"""


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    """A real installed distribution: a command, a new search backend, and a second ``serper``."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "gs_demo_plugin.py").write_text(PLUGIN_MODULE, encoding="utf-8")
    dist_info = site / "gs_demo_plugin-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: gs-demo-plugin\nVersion: 1.2.3\n")
    (dist_info / "entry_points.txt").write_text(
        "[gen_searcher.commands]\nhello = gs_demo_plugin:register\n\n"
        "[gen_searcher.search_backends]\ndemo = gs_demo_plugin:create\nserper = gs_demo_plugin:create\n"
    )
    return site


def _cli(site: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "gen_searcher_core", *args], capture_output=True, text=True, env=env, check=False
    )


def test_plugins_lists_every_group_with_distribution_and_version() -> None:
    result = _cli(None, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {group["group"]: group for group in json.loads(result.stdout)}
    assert set(GROUPS) <= set(listed)
    serper = next(p for p in listed["gen_searcher.search_backends"]["providers"] if p["name"] == "serper")
    assert serper == {
        "name": "serper",
        "object": "search_tools.backends.serper:create",
        "distribution": "gen-searcher",
        "version": serper["version"],
        "clash": False,
    }
    assert serper["version"]
    assert {"serve", "plugins"} <= {p["name"] for p in listed["gen_searcher.commands"]["providers"]}
    assert listed["gen_searcher.renderers"]["kind"] == "renderer"


def test_plugins_names_a_third_party_and_marks_a_clash(plugin_site: Path) -> None:
    text = _cli(plugin_site, "plugins")
    assert text.returncode == 1  # a clash is a problem to fix, so the listing exits non-zero
    lines = [line for line in text.stdout.splitlines() if line.strip().startswith("demo ")]
    line = next(line for line in lines if "gs_demo_plugin" in line)  # the plugin's backend, not `gen-searcher demo`
    assert "gs_demo_plugin:create" in line and "[gs-demo-plugin 1.2.3]" in line
    serper_lines = [line for line in text.stdout.splitlines() if line.strip().startswith("serper ")]
    assert len(serper_lines) == 2 and all("CLASH" in line for line in serper_lines)
    # The plugin's command works; the clashing backend name is refused naming both providers.
    assert "hello from gs-demo-plugin" in _cli(plugin_site, "hello").stdout
    found = json.loads(_cli(plugin_site, "plugins", "--json").stdout)
    backends = next(g for g in found if g["group"] == "gen_searcher.search_backends")["providers"]
    assert [p["clash"] for p in backends if p["name"] == "serper"] == [True, True]


def test_one_clash_rule_and_one_error_type_for_every_group() -> None:
    for group, what in GROUPS.items():
        twice = [EntryPoint("twice", "json:loads", group), EntryPoint("twice", "json:dumps", group)]
        with pytest.raises(PluginError, match=rf"the {what} name 'twice' is registered more than once"):
            load_plugin(group, "twice", what=what, extra=twice)
        # The same object seen twice (installed and editable) is one provider, not a clash.
        same = [EntryPoint("same", "json:loads", group), EntryPoint("same", "json:loads", group)]
        assert load_plugin(group, "same", what=what, extra=same) is json.loads
        with pytest.raises(PluginError, match=rf"{what} plugin 'json:__doc__' is not callable"):
            load_plugin(group, "doc", what=what, extra=[EntryPoint("doc", "json:__doc__", group)])
        with pytest.raises(PluginError, match=rf"unknown {what} 'nope'"):
            load_plugin(group, "nope", what=what)


def test_providers_without_a_distribution_are_listed_as_such() -> None:
    extra = [EntryPoint("embedded", "json:loads", "gen_searcher.renderers")]
    embedded = next(p for p in providers("gen_searcher.renderers", extra) if p.name == "embedded")
    assert (embedded.distribution, embedded.version, embedded.clash) == (None, None, False)
