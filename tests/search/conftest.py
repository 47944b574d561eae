"""Fixtures of the search area: a small corpus, its index, settings, and a real redis-server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.settings import Settings
from search_tools.index import build_index
from tests.support.env import clear_settings_environment
from tests.support.redis_server import RedisUnavailable, redis_server
from tests.support.settings import hermetic_settings, merged_sections

EIFFEL_HTML = """<!doctype html>
<html><head><title>Eiffel Tower: history and facts</title></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article>
<h1>The Eiffel Tower</h1>
<p>The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. It was designed by
the engineering company of Gustave Eiffel and completed in 1889 as the entrance arch of the World's Fair.</p>
<figure><img src="img/eiffel-night.jpg" alt="Eiffel Tower illuminated" width="1200" height="800">
<figcaption>The tower sparkling after sunset over the Seine</figcaption></figure>
<p>Visitors reach the top by stairs or lifts. <img src="/static/lift-cabin.png" alt="a double-deck lift cabin">
The original lifts were built by Otis and Fives-Lille.</p>
<img src="data:image/png;base64,AAAA" alt="inline pixel">
</article>
<footer>Copyright travel site</footer>
</body></html>
"""

LOUVRE_MD = """# The Louvre museum

The Louvre in Paris is the most visited art museum in the world. It holds the Mona Lisa by Leonardo da Vinci
and the Venus de Milo. Its glass pyramid entrance was designed by I. M. Pei.
"""

BREAD_TXT = """Baking sourdough bread needs flour, water, salt and a starter culture.
Paris bakeries are famous for baguettes; this note mentions the tower once in passing.
"""

RECORDS = [
    {
        "url": "https://example.org/cpp-templates",
        "title": "C++ templates",
        "text": "Templates in C++ allow generic programming over types.",
    },
    {
        "url": "https://example.org/kyoto",
        "title": "京都 Kyoto temples",
        "text": "Kinkaku-ji, the golden pavilion in 京都, is a Zen temple. Café culture thrives in Zürich too.",
    },
    {
        "url": "https://example.org/qwen-image",
        "title": "Qwen-Image model",
        "text": "Qwen-Image is an image generation foundation model with strong text rendering.",
    },
]


def write_corpus(root: Path) -> Path:
    (root / "guides").mkdir(parents=True, exist_ok=True)
    (root / "eiffel.html").write_text(EIFFEL_HTML, encoding="utf-8")
    (root / "guides" / "louvre museum.md").write_text(LOUVRE_MD, encoding="utf-8")
    (root / "bread_notes.txt").write_text(BREAD_TXT, encoding="utf-8")
    (root / "records.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n", encoding="utf-8"
    )
    (root / ".hidden.md").write_text("# secret eiffel draft\n", encoding="utf-8")
    (root / "ignored.csv").write_text("eiffel,tower\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def index_path(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("index") / "corpus.db"
    build_index(corpus_dir, out, base_url="http://127.0.0.1:8765/site/")
    return out


@pytest.fixture
def make_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings isolated in tmp_path (cache file, image dir), with overrides per section."""

    def make(**overrides: object) -> Settings:
        search = {"retry_backoff_s": 0.01, "timeout_s": 10.0, "rate_limit_per_s": 1000.0}  # generous under load
        return hermetic_settings(tmp_path, **merged_sections({"search": search}, overrides))

    return make


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their backend explicitly; a developer's real keys must not leak in."""
    clear_settings_environment(monkeypatch)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, without persistence."""
    with contextlib.ExitStack() as stack:
        try:
            url, _ = stack.enter_context(redis_server(tmp_path_factory.mktemp("redis")))
        except RedisUnavailable as exc:
            pytest.skip(str(exc))
        yield url
