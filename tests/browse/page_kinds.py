"""The page kinds a reader meets, served by the JavaScript web under ``/kinds/NAME``, each with its expected text.

JavaScript kinds draw their article with scripts (timers, progressive rendering,
shadow DOM, sections that load when scrolled into view, hydration from embedded
data, a client-side route, a consent banner over a shell, site chrome in plain
divs, a server-rendered teaser): ``direct`` cannot read them, ``auto`` must render
them, ``browser`` must read every expected sentence. Static kinds hold their
article in the HTML, inside places that look like page furniture (an ASP.NET
``<form>``, a page-wide ``<header>`` or ``<aside>``, ``<noscript>``; next to 16 KB of
analytics script): ``auto`` must read them directly. Every page carries site chrome with more than 200 characters.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

SENTENCES = (
    "The Bellmoor lighthouse was first lit on 14 March 1861 after six years of construction on the granite "
    "headland north of the harbour.",
    "The tower stands 38 metres tall and is painted in red and white bands, so that sailors can tell it apart "
    "from the plain white tower at Carrow Point.",
    "Its lantern room holds a second-order Fresnel lens made in Paris, turned by a clockwork mechanism.",
    "The last keepers left in 1987, when the light was automated and watched from the harbour office instead.",
)
ARTICLE = "".join(f"<p>{s}</p>" for s in SENTENCES)
CHROME_LINKS = " ".join(
    f"<a href='/section/{n}'>{n.title()} coverage</a>"
    for n in ("politics", "business", "science", "culture", "sport", "travel", "weather", "opinion", "podcasts")
)
HEADER = f"<header><div class='brand'>The Harbour Gazette, est. 1902</div><nav>{CHROME_LINKS}</nav></header>"
FOOTER = (
    "<footer><p>Copyright 2026 The Harbour Gazette. All rights reserved. Contact the newsroom, advertise with us, "
    "read our privacy policy and our terms of use.</p></footer>"
)
DIV_CHROME = (
    f"<div class='top-strip'>{CHROME_LINKS}</div><div class='brand-row'>The Harbour Gazette, est. 1902. "
    "Subscribe for full access to every story, the archive and the daily puzzle.</div>"
)
FILL = "document.getElementById('app').innerHTML = "
FIRST_THREE = "".join(f"<p>{s}</p>" for s in SENTENCES[:3])


@dataclass(frozen=True)
class Kind:
    name: str
    javascript: bool  # the article is drawn by scripts (auto renders it) or sits in the HTML (auto reads it)
    expected: tuple[str, ...] = SENTENCES


def _page(body: str, script: str = "", head: str = "") -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>The Bellmoor Lighthouse</title>"
        f"{head}</head><body>{body}<script>{script}</script></body></html>"
    )


def _shell(script: str, *, app: str = "<main id='app'></main>", chrome: str = HEADER + "{app}" + FOOTER) -> str:
    return _page(chrome.format(app=app), script)


LAZY_SCRIPT = """
var io = new IntersectionObserver(function (entries) { entries.forEach(function (e) {
  if (!e.isIntersecting || e.target.dataset.done) return; e.target.dataset.done = '1'; io.unobserve(e.target);
  fetch('/kinds/api/section?n=' + e.target.dataset.n).then(function (r) { return r.text(); })
    .then(function (t) { e.target.innerHTML = '<p>' + t + '</p>'; }); }); });
document.querySelectorAll('section[data-n]').forEach(function (s) { io.observe(s); });"""

SHADOW_SCRIPT = f"""
customElements.define('lighthouse-story', class extends HTMLElement {{ connectedCallback() {{
  var root = this.attachShadow({{mode: 'open'}});
  root.innerHTML = '<style>p {{ color: #222; }}</style><article><h1>Bellmoor</h1>' + {json.dumps(FIRST_THREE)}
    + '<inner-note><slot></slot></inner-note></article>';
}} }});
customElements.define('inner-note', class extends HTMLElement {{ connectedCallback() {{
  this.attachShadow({{mode: 'open'}}).innerHTML = '<aside-note><slot></slot></aside-note>'; }} }});"""

HYDRATE_SCRIPT = """var data = JSON.parse(document.getElementById('__NEXT_DATA__').textContent);
setTimeout(function () { document.getElementById('app').innerHTML = data.props.pageProps.html; }, 300);"""

SPA_SCRIPT = """var routes = {'/kinds/spa/lighthouse': 'lighthouse'};
function render() { var key = routes[location.pathname]; if (!key) return;
  fetch('/kinds/api/route/' + key).then(function (r) { return r.json(); })
    .then(function (d) { document.getElementById('app').innerHTML = d.html; }); }
history.replaceState({}, '', location.pathname); render();"""


def pages() -> dict[str, str]:
    """Every kind's HTML by name (the lazy and SPA pages fetch their text from ``/kinds/api/...``)."""
    spacer = "<div style='height: 1400px'></div>"
    lazy_sections = "".join(f"{spacer}<section data-n='{n}'>…</section>" for n in range(1, 4))
    return {
        # JavaScript kinds
        "timers": _shell(f"setTimeout(function () {{ {FILL} {json.dumps(ARTICLE)}; }}, 1200);"),
        "progressive": _shell(
            "var parts = " + json.dumps([f"<p>{s}</p>" for s in SENTENCES]) + ";"
            "parts.forEach(function (p, i) { setTimeout(function () {"
            " document.getElementById('app').insertAdjacentHTML('beforeend', p); }, 500 + 350 * i); });"
        ),
        "shadow": _shell(
            SHADOW_SCRIPT, app=f"<main id='app'><lighthouse-story><p>{SENTENCES[3]}</p></lighthouse-story></main>"
        ),
        "lazy": _shell(LAZY_SCRIPT, app=f"<main id='app'><p>{SENTENCES[0]}</p>{lazy_sections}{spacer}</main>"),
        "hydration": _page(
            HEADER + "<div id='app'><div class='skeleton'></div></div>" + FOOTER,
            HYDRATE_SCRIPT,
            head="<script id='__NEXT_DATA__' type='application/json'>"
            + json.dumps({"props": {"pageProps": {"html": ARTICLE}}})
            + "</script>",
        ),
        "spa": _shell(SPA_SCRIPT),
        "consent": _page(
            "<div class='cc-window' role='dialog'><p>We and our 214 partners store and access information on your "
            "device, such as cookies, and process personal data such as unique identifiers and standard "
            "information sent by a device for personalised ads and content, ad and content measurement, and "
            "audience insights.</p><button>Accept all</button><button>Manage options</button></div>"
            "<div id='root'></div>",
            f"setTimeout(function () {{ document.getElementById('root').innerHTML = {json.dumps(ARTICLE)}; }}, 200);",
        ),
        "div-chrome": _page(
            DIV_CHROME + "<div id='app'><div class='spinner'>Loading…</div></div>",
            f"setTimeout(function () {{ {FILL} {json.dumps(ARTICLE)}; }}, 300);",
        ),
        "teaser": _page(
            HEADER + f"<div class='teaser'><p>{SENTENCES[0]} {SENTENCES[1]}</p></div><div id='app'></div>"
            "<noscript>You need to enable JavaScript to run this app.</noscript>" + FOOTER,
            f"setTimeout(function () {{ {FILL} {json.dumps(ARTICLE)}; }}, 300);",
        ),
        # static kinds: the article is in the HTML, inside what looks like page furniture
        "in-form": _page(
            "<form method='post' action='./article.aspx' id='aspnetForm'><input type='hidden' name='__VIEWSTATE' "
            f"value='dDwtMTA4'>{HEADER}<div class='content'><h1>Bellmoor</h1>{ARTICLE}</div>{FOOTER}</form>",
            "function __doPostBack(t, a) { var f = document.forms['aspnetForm']; f.submit(); }",
        ),
        "in-header": _page(
            f"<header class='page'><nav>{CHROME_LINKS}</nav><h1>Bellmoor</h1><div class='story'>{ARTICLE}</div>"
            f"</header>{FOOTER}",
            "window.dataLayer = window.dataLayer || [];",
        ),
        "in-aside": _page(
            f"{HEADER}<aside class='layout'><div class='story'><h1>Bellmoor</h1>{ARTICLE}</div></aside>{FOOTER}",
            "var ads = [];",
        ),
        "script-heavy": _page(
            f"{HEADER}<div class='story'><h1>Bellmoor</h1>{ARTICLE}</div>{FOOTER}",
            "window.dataLayer = ["
            + ",".join(json.dumps({"event": f"view{n}", "ts": n * 7}) for n in range(600))
            + "];",
        ),
        "in-noscript": _page(
            f"{HEADER}<noscript><article><h1>Bellmoor</h1>{ARTICLE}</article></noscript>"
            f"<div id='enhanced'></div>{FOOTER}",
            "document.documentElement.className = 'js';",
        ),
    }


KINDS = [
    Kind("timers", True),
    Kind("progressive", True),
    Kind("shadow", True),
    Kind("lazy", True),
    Kind("hydration", True),
    Kind("spa", True),
    Kind("consent", True),
    Kind("div-chrome", True),
    Kind("teaser", True),
    Kind("in-form", False),
    Kind("in-header", False),
    Kind("in-aside", False),
    Kind("script-heavy", False),
    Kind("in-noscript", False),
]


def kind_routes(count: Callable[[Request], Awaitable[None]]) -> list[Route]:
    """The routes of the page kinds; ``count`` records each hit."""
    html = pages()

    async def kind(request: Request) -> Response:
        await count(request)
        name = request.path_params["name"]
        return HTMLResponse(html[name]) if name in html else Response(status_code=404)

    async def spa(request: Request) -> Response:
        await count(request)
        return HTMLResponse(html["spa"])

    async def section(request: Request) -> Response:
        await count(request)
        return Response(SENTENCES[int(request.query_params["n"])], media_type="text/plain")

    async def route(request: Request) -> Response:
        await count(request)
        return JSONResponse({"html": "<h1>Bellmoor</h1>" + ARTICLE})

    return [
        Route("/kinds/api/section", section),
        Route("/kinds/api/route/{key}", route),
        Route("/kinds/spa/{rest:path}", spa),
        Route("/kinds/{name}", kind),
    ]


def kind_path(kind: Kind) -> str:
    return "/kinds/spa/lighthouse" if kind.name == "spa" else f"/kinds/{kind.name}"
