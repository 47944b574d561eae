"""Pages that need a browser, served on 127.0.0.1: JavaScript shells, delays, endless pages, hostile scripts.

``internal`` is the port of the browse tests' internal service (never reachable);
``rebind`` is a host name the tests' resolver answers with 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.browse import content
from tests.browse.page_kinds import kind_routes

ARTICLE = "".join(
    f"<p>{text}</p>"
    for text in (
        "The Bellmoor lighthouse was first lit on 14 March 1861 after six years of construction on the granite "
        "headland north of the harbour.",
        "The tower stands 38 metres tall and is painted in red and white bands, so that sailors can tell it apart "
        "from the plain white tower at Carrow Point.",
        "Its lantern room holds a second-order Fresnel lens made in Paris, turned by a clockwork mechanism.",
    )
)
KEEP = content.ARTICLE_KEEP


@dataclass
class JsWeb:
    base: str = ""
    port: int = 0
    internal_port: int = 0
    third_party_host: str = "cdn.elsewhere.test"  # the tests' resolver answers 127.0.0.1 for it
    hits: collections.Counter[str] = field(default_factory=collections.Counter)

    def url(self, path: str) -> str:
        return self.base + path


def page(title: str, body: str, script: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><nav><a href='/'>Home</a></nav><main id='app'>Loading…</main>{body}"
        f"<script>{script}</script></body></html>"
    )


FILL = "document.getElementById('app').innerHTML = "


def build_js_app(web: JsWeb) -> Starlette:
    async def count(request: Request) -> None:
        web.hits[request.url.path] += 1

    async def shell(request: Request) -> Response:
        await count(request)
        script = (
            "var x = new XMLHttpRequest(); x.open('GET', '/api/article');"
            f"x.onload = function () {{ {FILL} '<article><h1>Bellmoor</h1>' + JSON.parse(x.responseText).html"
            " + '</article>'; }; x.send();"
        )
        return page("The Bellmoor Lighthouse", "", script)

    async def api_article(request: Request) -> Response:
        await count(request)
        await asyncio.sleep(0.1)
        return JSONResponse({"html": ARTICLE})

    async def server_rendered(request: Request) -> Response:
        await count(request)
        return HTMLResponse(content.article_html().replace("</body>", "<script>var analytics = 1;</script></body>"))

    async def delayed(request: Request) -> Response:
        await count(request)
        return page("Delayed", "", f"setTimeout(function () {{ {FILL} {json.dumps(ARTICLE)}; }}, 1200);")

    async def scroll(request: Request) -> Response:
        await count(request)
        script = """
var next = 0, busy = false;
function more() { if (busy) return; busy = true;
  fetch('/api/items?page=' + next).then(r => r.json()).then(d => {
    var app = document.getElementById('app'); if (next === 0) app.innerHTML = '';
    d.items.forEach(t => { var p = document.createElement('p'); p.textContent = t; app.appendChild(p); });
    next += 1; busy = false; }); }
window.addEventListener('scroll', function () {
  if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 50) more(); });
more();"""
        return page("Endless", "", script)

    async def items(request: Request) -> Response:
        await count(request)
        n = int(request.query_params["page"])
        texts = [
            f"Batch {n} entry {i}: the harbour log of that season lists ships, storms and cargo in detail."
            for i in range(30)
        ]
        return JSONResponse({"items": texts})

    async def unsettled(request: Request) -> Response:
        await count(request)
        script = (
            f"{FILL} {json.dumps(ARTICLE)};"
            "setInterval(function () { fetch('/api/poll').catch(function () {}); }, 100);"
            "fetch('/api/hang').catch(function () {});"
        )
        return page("Never settles", "", script)

    async def poll(request: Request) -> Response:
        await count(request)
        return JSONResponse({"ok": True})

    async def hang(request: Request) -> Response:
        await asyncio.sleep(20)
        return JSONResponse({})

    async def hostile(request: Request) -> Response:
        await count(request)
        internal = f"127.0.0.1:{web.internal_port}"
        probes = [
            "http://169.254.169.254/latest/meta-data/",
            f"http://{internal}/secret",
            "http://10.0.0.1/admin",
            f"http://rebind.test:{web.internal_port}/secret",
            f"/redirect?to=http://{internal}/redirected",
            "file:///etc/passwd",
        ]
        script = (
            f"{FILL} {json.dumps(ARTICLE)};"
            + "".join(f"fetch({json.dumps(p)}).catch(function () {{}});" for p in probes)
            + f"try {{ new WebSocket('ws://{internal}/ws'); }} catch (e) {{}}"
        )
        frame = f"<iframe src='http://{internal}/framed'></iframe><iframe src='file:///etc/hostname'></iframe>"
        return page("Hostile", frame, script)

    async def redirect(request: Request) -> Response:
        await count(request)
        return Response(status_code=302, headers={"location": request.query_params["to"]})

    async def popups(request: Request) -> Response:
        await count(request)
        script = (
            f"{FILL} {json.dumps(ARTICLE)};"
            "window.open('/popup-target');"
            "var a = document.createElement('a'); a.href = '/popup-tab'; a.target = '_blank';"
            "document.body.appendChild(a); a.click();"
            "var d = document.createElement('a'); d.href = '/file.zip'; d.download = 'file.zip';"
            "document.body.appendChild(d); d.click();"
            "setTimeout(function () { location.href = '/elsewhere'; }, 50);"
        )
        return page("Popups", "", script)

    async def target(request: Request) -> Response:
        await count(request)
        return HTMLResponse("<p>a page that must not be opened</p>")

    async def download(request: Request) -> Response:
        await count(request)
        return Response(b"PK\x03\x04" + b"0" * 1024, media_type="application/zip")

    async def crash(request: Request) -> Response:
        await count(request)
        script = f"{FILL} {json.dumps(ARTICLE)}; var hog = []; while (true) {{ hog.push(new Array(1e6).fill(7)); }}"
        return page("Crash", "", script)

    async def spin(request: Request) -> Response:
        await count(request)
        return page("Spin", "", f"{FILL} {json.dumps(ARTICLE)}; while (true) {{}}")

    async def heavy(request: Request) -> Response:
        await count(request)
        script = f"{FILL} {json.dumps(ARTICLE)};" + "".join(
            f"fetch('/api/blob?n={i}').catch(function () {{}});" for i in range(6)
        )
        return page("Heavy", "", script)

    async def blob(request: Request) -> Response:
        await count(request)
        return Response(b"z" * (1024 * 1024), media_type="application/octet-stream")

    async def pictures(request: Request) -> Response:
        await count(request)
        return HTMLResponse(
            f"<html><head><title>Pictures</title></head><body><article>{ARTICLE}"
            "<img src='/photo.jpg'><video src='/clip.mp4' autoplay></video></article></body></html>"
        )

    async def photo(request: Request) -> Response:
        await count(request)
        return Response(content.jpeg_bytes(), media_type="image/jpeg")

    async def popup_storm(request: Request) -> Response:
        """Windows opened every way a page can: past a capturing click handler, with noopener, from a fresh
        iframe's window, by a form with a target, and in a loop."""
        await count(request)
        script = (
            f"{FILL} {json.dumps(ARTICLE)};"
            "window.addEventListener('click', function (e) { e.stopImmediatePropagation(); }, true);"
            "for (var i = 0; i < 6; i++) { var a = document.createElement('a');"
            "  a.href = '/popup-tab?n=' + i; a.target = '_blank'; a.rel = i % 2 ? 'noopener' : '';"
            "  document.body.appendChild(a); a.dispatchEvent(new MouseEvent('click', {bubbles: true})); }"
            "var f = document.createElement('iframe'); document.body.appendChild(f);"
            "try { f.contentWindow.open('/popup-target?via=iframe'); } catch (e) {}"
            "var form = document.createElement('form'); form.action = '/popup-target'; form.target = '_blank';"
            "document.body.appendChild(form); form.submit();"
            "var n = 0; var t = setInterval(function () { var b = document.createElement('a');"
            "  b.href = '/popup-tab?loop=' + n; b.target = 'w' + n; document.body.appendChild(b);"
            "  b.dispatchEvent(new MouseEvent('click', {bubbles: true})); if (++n > 10) clearInterval(t); }, 20);"
        )
        return page("Popup storm", "", script)

    async def typed_arrays(request: Request) -> Response:
        """Memory outside the JavaScript heap: typed arrays, touched so that they are resident."""
        await count(request)
        script = (
            f"{FILL} {json.dumps(ARTICLE)}; var held = [];"
            "function more() { var b = new Uint8Array(64 * 1024 * 1024); b.fill(7); held.push(b);"
            "  if (held.length < 20) setTimeout(more, 10); }"
            "setTimeout(more, 0);"
        )
        return page("Typed arrays", "", script)

    async def third_party(request: Request) -> Response:
        """Scripts, XHR and a WebSocket for another site and a known tracker, next to a same-site request."""
        await count(request)
        other = f"http://{web.third_party_host}:{web.port}"
        script = (
            "var x = new XMLHttpRequest(); x.open('GET', '/api/article');"
            f"x.onload = function () {{ {FILL} JSON.parse(x.responseText).html; }}; x.send();"
            f"fetch('{other}/third/data.json').catch(function () {{}});"
            "fetch('https://www.google-analytics.com/g/collect?v=2').catch(function () {});"
            f"try {{ new WebSocket('ws://{web.third_party_host}:{web.port}/third/ws'); }} catch (e) {{}}"
        )
        return page("Third parties", f"<script src='{other}/third/lib.js'></script>", script)

    async def third_party_file(request: Request) -> Response:
        await count(request)
        return Response("var loaded = true;", media_type="application/javascript")

    return Starlette(
        routes=[
            Route("/popup-storm", popup_storm),
            Route("/typed-arrays", typed_arrays),
            Route("/third-party", third_party),
            Route("/third/{name}", third_party_file),
            Route("/shell", shell),
            Route("/api/article", api_article),
            Route("/server-rendered", server_rendered),
            Route("/delayed", delayed),
            Route("/scroll", scroll),
            Route("/api/items", items),
            Route("/unsettled", unsettled),
            Route("/api/poll", poll),
            Route("/api/hang", hang),
            Route("/hostile", hostile),
            Route("/redirect", redirect),
            Route("/popups", popups),
            Route("/popup-target", target),
            Route("/popup-tab", target),
            Route("/elsewhere", target),
            Route("/file.zip", download),
            Route("/crash", crash),
            Route("/spin", spin),
            Route("/heavy", heavy),
            Route("/api/blob", blob),
            Route("/pictures", pictures),
            Route("/photo.jpg", photo),
            Route("/clip.mp4", download),
            *kind_routes(count),
        ]
    )
