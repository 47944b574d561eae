"""Static HTML pages from Jinja2 templates: one environment setup for every area that writes pages.

Each area keeps its page templates in its own ``templates/`` package folder; the
shared layout (``_base.html.j2``: style sheet, the sort/filter script) lives here.
Autoescaping is always on, so text from prompts, pages and models is shown as text.
Pages embed their data and reference images by relative paths: no server, no
network, no CDN.

Every page carries a Content-Security-Policy that allows only the page's own inline
script (by a per-page nonce) and images from the page's folder or ``data:`` URLs,
so even an escaping mistake could not run a script or reach the network.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2


def page_environment(package: str) -> jinja2.Environment:
    """A Jinja2 environment over ``package``'s ``templates/`` folder plus the shared layout."""
    loader = jinja2.ChoiceLoader(
        [jinja2.PackageLoader(package, "templates"), jinja2.PackageLoader("gen_searcher_core", "templates")]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,  # every template, whatever its name: all text is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["pct"] = percent
    env.filters["web_url"] = web_url
    return env


def render_page(env: jinja2.Environment, template: str, **context: Any) -> str:
    """Render ``template`` with ``context`` and a fresh script nonce (``csp_nonce``)."""
    return env.get_template(template).render(csp_nonce=secrets.token_urlsafe(16), **context)


def write_page(path: Path, html: str) -> Path:
    """Write a page atomically (a reader never sees half a page)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def relative_href(target: Path, page_dir: Path) -> str:
    """A URL for ``target`` relative to the folder of the page that links it (percent-encoded)."""
    rel = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return quote(Path(rel).as_posix())


def web_url(value: Any) -> str:
    """``value`` when it is an http(s) URL, else ``""``: links from the web never get other schemes."""
    text = str(value or "").strip()
    return text if urlsplit(text).scheme.lower() in ("http", "https") else ""


def format_number(value: Any, digits: int = 2) -> str:
    """``-`` for missing values, fixed digits for floats, ``str`` for the rest."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def percent(value: Any, scale: float = 1.0) -> float:
    """``value`` as a percentage of ``scale``, clamped to 0..100 (bar widths)."""
    try:
        share = 100.0 * float(value) / scale
    except (TypeError, ValueError, ZeroDivisionError):
        return 0.0
    return max(0.0, min(100.0, share))
