"""``browser``: pages rendered by a headless Chromium (Playwright), for sites that draw their text with JavaScript.

The document itself is read by the ``direct`` fetcher (guard, robots.txt,
redirects, caps, content type), then handed to Chromium in place of the
navigation; everything the page loads after that (scripts, XHR/fetch, iframes,
WebSockets, redirect hops) goes through :class:`~search_tools.fetchers.guard_proxy.GuardProxy`,
which applies the same address guard to the address actually connected to.
Requests for other sites and known trackers are stopped before they leave
(``fetch.browser_subresources``, :mod:`search_tools.fetchers.subresources`).
Downloads, service workers, permission prompts and navigations away from the
page are off; images, media and fonts are not downloaded. Chromium's popup
blocker stays on: every window a page tries to open is counted
(``popup_blocked``), any that opens is closed (``popup_closed``). The page is read
once its main text settles and it has been scrolled a screen at a time
(:meth:`BrowserFetcher._settle`), with open shadow roots flattened into it; the
rendered DOM goes to the same extraction as ``direct``.

One Chromium per server, started on the first render (so ``auto`` on
server-rendered pages never starts it), at most ``contexts`` pages at once, each
under a time budget and a byte budget. Each of the ``contexts`` slots keeps one
browser context (its own proxy port) and page for up to 50 pages, blanked and
its cookies cleared between pages (a fresh context per page costs the browser
process more than the render); a failed page discards it. A renderer crash fails
its page only, and so does a renderer killed for its memory or for being one
too many (:mod:`search_tools.fetchers.renderer_watch`); a browser that crashed,
or hung past a page's budget, is killed and started again on the next render;
``aclose`` leaves no Chromium behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from gen_searcher_core.errors import ConfigError
from safe_io.fetch_protocol import FetchedPage
from safe_io.fetcher import FetchError, FetchTimeout, GuardedFetcher, Resolver, system_resolver
from safe_io.netguard import AddressPolicy
from search_tools.extract import HTML_TYPES, sniff_media_type
from search_tools.fetchers.guard_proxy import GuardProxy, Slot
from search_tools.fetchers.renderer_watch import RendererWatch
from search_tools.fetchers.subresources import SubresourceMode, SubresourceRule

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from search_tools.fetchers.registry import FetcherConfig
    from search_tools.settings import FetchSettings

logger = logging.getLogger(__name__)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Off: background traffic, first-run work, QUIC (would bypass the proxy), WebRTC UDP outside the proxy,
# DNS prefetching, permission prompts. --no-sandbox: containers rarely allow Chromium's own sandbox.
BASE_ARGS = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-quic",
    "--dns-prefetch-disable",
    "--deny-permission-prompts",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # no spare renderer kept warm: the process count after a page is the count before it
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,"
    "SpareRendererForSitePerProcess",
)
# No popups, no download links (downloads bypass request routing; the context refuses them too).
_NO_POPUPS = """window.open = () => null;
document.addEventListener('click', (e) => {
  const a = e.target && e.target.closest ? e.target.closest('a[download], a[target]') : null;
  if (a) e.preventDefault();
}, true);"""
# The text a reader would keep: visible text outside scripts, styles and site chrome (header, nav, footer, aside,
# their ARIA roles, and plain divs whose id or class names them), shadow roots included. The settle rule waits on
# it, so a page whose chrome already holds text is not read before its article arrives.
_MAIN_TEXT = r"""() => {
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEADER', 'NAV', 'FOOTER', 'ASIDE', 'SVG']);
  const roles = /^(banner|navigation|contentinfo|complementary)$/;
  const names = /(^|[\s_-])(header|nav|navbar|menu|footer|sidebar|cookie|consent|banner)([\s_-]|$)/i;
  let total = 0, seen = 0;
  const walk = (node) => {
    for (let child = node.firstChild; child && seen < 20000; child = child.nextSibling) {
      seen += 1;
      if (child.nodeType === 3) { total += child.data.trim().length; continue; }
      if (child.nodeType !== 1 || skip.has(child.tagName.toUpperCase())) continue;
      if (roles.test(child.getAttribute('role') || '')) continue;
      if (names.test((child.id || '') + ' ' + (typeof child.className === 'string' ? child.className : ''))) continue;
      if (child.shadowRoot) walk(child.shadowRoot);
      walk(child);
    }
  };
  if (document.body) walk(document.body);
  return total;
}"""
# One viewport down; answers whether the bottom is in view and the page's height.
_SCROLL_STEP = """() => { const e = document.scrollingElement || document.body;
  if (!e) return [true, 0]; window.scrollBy(0, window.innerHeight);
  return [window.innerHeight + window.scrollY >= e.scrollHeight - 2, e.scrollHeight]; }"""
_HEIGHT = "() => (document.scrollingElement || document.body || {scrollHeight: 0}).scrollHeight"
# Open shadow roots moved into the light DOM (slots replaced by what they show), innermost first, so the
# serialized page holds what the reader sees. Runs once, just before the page is read.
_FLATTEN_SHADOWS = """() => {
  const hosts = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { hosts.push(el); walk(el.shadowRoot); } } };
  walk(document);
  for (const host of hosts.reverse()) {
    const root = host.shadowRoot;
    for (const slot of Array.from(root.querySelectorAll('slot'))) {
      const shown = slot.assignedNodes({flatten: true});
      slot.replaceWith(...(shown.length ? shown : Array.from(slot.childNodes)));
    }
    host.replaceChildren(...Array.from(root.childNodes).filter((n) => n.nodeName !== 'STYLE'));
  }
  return hosts.length;
}"""
_LOCAL_RESOURCE = "Not allowed to load local resource"
_VIEWPORT = {"width": 1280, "height": 1024}
_TAB_PAGES = 50  # pages one context reads before a fresh one replaces it
_QUIET_S = 0.3  # no request in flight for this long: the network has settled
_POLL_S = 0.05
_STABLE_S = 0.5  # the main text has not grown for this long (network quiet): the page has settled
_TEXT_POLL_S = 0.15
_WATCH_S = 0.2


class BrowserGone(FetchError):
    """The browser process went away while a page was rendering."""


def find_chromium(path: str | None = None) -> str:
    """The Chromium executable: ``path`` when given (a file or a name on PATH), else the first known name on PATH."""
    for name in (path,) if path else CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    wanted = f"{path!r}" if path else "any of " + ", ".join(CHROMIUM_NAMES)
    raise ConfigError(
        f"the browser fetcher needs Chromium: {wanted} not found (install Debian's chromium package "
        "or set GEN_SEARCHER_FETCH__BROWSER_PATH)"
    )


@dataclass(frozen=True)
class BrowserOptions:
    executable: str
    contexts: int = 4
    page_timeout_s: float = 20.0
    settle_s: float = 5.0
    max_bytes: int = 20 * 1024 * 1024
    js_heap_mb: int = 512
    renderer_memory_mb: int = 1024
    max_renderers: int = 0  # 0: two per context and two more
    scrolls: int = 2
    scroll_screens: int = 12
    block: frozenset[str] = frozenset({"image", "media", "font"})
    subresources: SubresourceMode = "same-site"
    min_chars: int = 200
    user_agent: str | None = None

    @classmethod
    def from_settings(cls, fetch: FetchSettings) -> BrowserOptions:
        return cls(
            executable=find_chromium(fetch.browser_path),
            contexts=fetch.browser_contexts,
            page_timeout_s=fetch.browser_page_timeout_s,
            settle_s=min(fetch.browser_settle_s, fetch.browser_page_timeout_s),
            max_bytes=fetch.browser_max_bytes,
            js_heap_mb=fetch.browser_js_heap_mb,
            renderer_memory_mb=fetch.browser_renderer_memory_mb,
            max_renderers=fetch.browser_max_renderers,
            scrolls=fetch.browser_scrolls,
            scroll_screens=fetch.browser_scroll_screens,
            block=frozenset(fetch.browser_block),
            subresources=fetch.browser_subresources,
            min_chars=fetch.auto_min_chars,
            user_agent=fetch.user_agent,
        )

    @property
    def renderer_cap(self) -> int:
        return self.max_renderers or 2 * self.contexts + 2

    def launch_args(self) -> list[str]:
        return [*BASE_ARGS, f"--js-flags=--max-old-space-size={self.js_heap_mb}"]


class _PageState:
    """What one page is doing: requests in flight, the last network activity, crash and refusals."""

    def __init__(self) -> None:
        self.inflight = 0
        self.started = 0
        self.last_activity = asyncio.get_running_loop().time()
        self.crashed = False
        self.document_served = False
        self.memory_kills = 0  # the watch's memory kills when the page started

    def request_started(self, _request: Any) -> None:
        self.inflight += 1
        self.started += 1
        self.last_activity = asyncio.get_running_loop().time()

    def request_ended(self, _request: Any) -> None:
        self.inflight = max(0, self.inflight - 1)
        self.last_activity = asyncio.get_running_loop().time()


class _Tab:
    """One slot's context and page, reused from page to page: a fresh context costs the browser process more
    CPU than rendering the page. Events go to the page being read (``state``); between pages there is none."""

    def __init__(self, browser: Any, context: Any, page: Any) -> None:
        self.browser, self.context, self.page = browser, context, page
        self.state: _PageState | None = None
        self.document: FetchedPage | None = None
        self.rule: SubresourceRule | None = None
        self.uses = 0
        self.tasks: set[asyncio.Future[None]] = set()

    def start(self, document: FetchedPage, state: _PageState, rule: SubresourceRule) -> None:
        self.document, self.state, self.rule = document, state, rule
        self.uses += 1

    def stop(self) -> None:
        self.document = self.state = self.rule = None

    def request_started(self, request: Any) -> None:
        if self.state is not None:
            self.state.request_started(request)

    def request_ended(self, request: Any) -> None:
        if self.state is not None:
            self.state.request_ended(request)

    def crashed(self, _page: Any) -> None:
        if self.state is not None:
            self.state.crashed = True


class BrowserFetcher:
    """Reads pages as Chromium renders them; see the module docstring."""

    name = "browser"

    def __init__(
        self,
        direct: GuardedFetcher,
        policy: AddressPolicy,
        options: BrowserOptions,
        *,
        resolver: Resolver = system_resolver,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.direct = direct
        self.options = options
        self._on_event = on_event
        self._proxy = GuardProxy(
            policy,
            resolver=resolver,
            on_refused=lambda _why: self._event("refused"),
            on_blocked=lambda _why: self._event("subresource_blocked"),
        )
        self._free: asyncio.Queue[int] | None = None
        self._tabs: dict[int, _Tab] = {}
        self._lock = asyncio.Lock()
        self._playwright: Any = None
        self._browser: Any = None
        self.pid: int | None = None  # the Chromium browser process, while one runs
        self.launches = 0
        self.watch = RendererWatch(options.renderer_memory_mb * 1024 * 1024, options.renderer_cap)
        self._rendering = 0
        self._watching: asyncio.Task[None] | None = None
        self._targets: Any = None  # the browser-level DevTools session that closes opened windows
        self._closing: set[str] = set()
        self._closers: set[asyncio.Future[None]] = set()

    @property
    def guard_key(self) -> str:
        return f"{self.direct.guard_key};fetcher=browser"

    def _event(self, event: str, fetcher: str = "browser") -> None:
        if self._on_event is not None:
            self._on_event(fetcher, event)

    async def fetch(
        self, url: str, *, accept: Collection[str] | None = None, max_bytes: int | None = None
    ) -> FetchedPage:
        """The page at ``url``: HTML rendered by Chromium, any other type as ``direct`` read it."""
        page = await self.direct.fetch(url, accept=accept, max_bytes=max_bytes)
        if sniff_media_type(page) not in HTML_TYPES:
            return replace(page, fetched_with="direct")
        return await self.render(page)

    async def render(self, document: FetchedPage) -> FetchedPage:
        """``document`` (an HTML page read by ``direct``) as the browser shows it once its scripts have run."""
        if self._free is None:
            self._free = asyncio.Queue()
            for index in range(self.options.contexts):
                self._free.put_nowait(index)
        index = await self._free.get()
        self._rendering += 1
        try:
            try:
                return await self._render(document, index)
            except BrowserGone:  # it died under us (killed, crashed): once more with a new browser
                return await self._render(document, index)
        finally:
            self._rendering -= 1
            self._free.put_nowait(index)

    def _start_watch(self) -> None:
        if self._watching is None or self._watching.done():
            self._watching = asyncio.ensure_future(self._watch_renderers())

    async def _watch_renderers(self) -> None:
        """While pages render: the renderers' memory and count, checked five times a second (in a thread)."""
        while self._rendering > 0:
            pid = self.pid
            if pid is not None:
                for line in await anyio.to_thread.run_sync(self.watch.check, pid):
                    logger.info("browser: killed %s", line)
                    self._event("renderer_killed")
            await asyncio.sleep(_WATCH_S)

    async def aclose(self) -> None:
        """Close the browser (killed if it does not close in time), the Playwright driver and the proxy."""
        async with self._lock:
            if self._watching is not None:
                self._watching.cancel()
                with contextlib.suppress(BaseException):
                    await self._watching
                self._watching = None
            await self._stop_browser()
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    with anyio.fail_after(10):
                        await self._playwright.stop()
                self._playwright = None
            await self._proxy.aclose()

    # -- the browser process -----------------------------------------------------------------
    async def _ensure_browser(self) -> Any:
        async with self._lock:
            if self._browser is not None and self._running():
                return self._browser
            if self._browser is not None:  # crashed or killed: start a new one
                await self._stop_browser()
                self._event("browser_restarted")
            if self._playwright is None:
                try:
                    from playwright.async_api import async_playwright
                except ImportError:
                    raise ConfigError(
                        "the browser fetcher needs Playwright: pip install 'gen-searcher[browser]'"
                    ) from None
                self._playwright = await async_playwright().start()
            await self._proxy.start(self.options.contexts)
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.options.executable,
                headless=True,
                args=self.options.launch_args(),
                proxy={"server": self._proxy.fallback.url},
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
                timeout=30_000,
                ignore_default_args=["--disable-popup-blocking"],  # Chromium's own blocker stays on
            )
            self.pid = await self._browser_pid(self._browser)
            self._targets = await self._watch_targets(self._browser)
            self.launches += 1
            self._event("browser_launched")
            return self._browser

    async def _watch_targets(self, browser: Any) -> Any:
        """A browser-level DevTools session that sees every window as it is created and closes each one a page
        opened (an opener: ``target=_blank``, ``window.open``, form targets, ``noopener`` included) at once,
        before Playwright would even report it."""
        return await browser.new_browser_cdp_session()

    def _close_target(self, session: Any, target: str) -> None:
        if target in self._closing:
            return
        self._closing.add(target)
        self._event("popup_closed")

        async def close() -> None:
            try:
                with contextlib.suppress(Exception), anyio.fail_after(5):
                    await session.send("Target.closeTarget", {"targetId": target})
            finally:
                self._closing.discard(target)

        task = asyncio.ensure_future(close())
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close_opened_windows(self) -> None:
        """Every window a page opened, closed (late ones included) and waited for."""
        session = self._targets
        if session is None:
            return
        with contextlib.suppress(Exception), anyio.fail_after(5):
            infos = await session.send("Target.getTargets")
            for info in infos.get("targetInfos", []):
                if info.get("type") == "page" and info.get("openerId"):
                    self._close_target(session, str(info.get("targetId")))
            if self._closers:
                await asyncio.gather(*self._closers, return_exceptions=True)

    def _running(self) -> bool:
        """The browser is connected and its process alive (a killed browser may look connected for a moment)."""
        return self._browser is not None and self._browser.is_connected() and (self.pid is None or _alive(self.pid))

    @staticmethod
    async def _browser_pid(browser: Any) -> int | None:
        session = await browser.new_browser_cdp_session()
        try:
            info = await session.send("SystemInfo.getProcessInfo")
        finally:
            with contextlib.suppress(Exception):
                await session.detach()
        return next((int(p["id"]) for p in info.get("processInfo", []) if p.get("type") == "browser"), None)

    async def _stop_browser(self) -> None:
        """Close the browser, killing it when it does not close within a few seconds."""
        browser, self._browser = self._browser, None
        self._tabs.clear()  # their contexts go with the browser
        self._targets = None
        if browser is not None:
            try:
                with anyio.fail_after(5):
                    await browser.close()
            except Exception:  # noqa: BLE001 - hung or already gone: killed below
                self._kill()
        await self._reap()

    def _kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)

    async def _reap(self) -> None:
        """Wait (briefly) until the browser process is gone; kill it if it lingers."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        for attempt in range(100):
            if not _alive(pid):
                return
            if attempt == 50:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.05)

    @staticmethod
    async def _responsive(browser: Any) -> bool:
        """Whether the browser still answers (after a page ran out of time: a hung browser is killed)."""
        try:
            with anyio.fail_after(3):
                session = await browser.new_browser_cdp_session()
                await session.detach()
        except Exception:  # noqa: BLE001 - no answer in time, or no browser at all
            return False
        return True

    async def _kill_hung(self) -> None:
        self._event("browser_killed")
        async with self._lock:
            self._kill()
            await self._stop_browser()

    # -- one page --------------------------------------------------------------------------
    async def _render(self, document: FetchedPage, index: int) -> FetchedPage:
        browser = await self._ensure_browser()
        slot = self._proxy.slots[index]
        rule = SubresourceRule.for_document(self.options.subresources, document.url)
        slot.reset(max(0, self.options.max_bytes - len(document.body)), rule)
        state = _PageState()
        state.memory_kills = self.watch.killed_for_memory
        self._start_watch()
        tab = self._tabs.get(index)
        done = False
        try:
            with anyio.fail_after(self.options.page_timeout_s):
                if tab is None or tab.browser is not browser or tab.uses >= _TAB_PAGES or tab.page.is_closed():
                    await self._discard_tab(index)
                    tab = self._tabs[index] = await self._open_tab(browser, slot)
                tab.start(document, state, rule)
                await tab.page.goto(document.url, wait_until="domcontentloaded")
                await self._settle(tab.page, state, slot)
                await tab.page.evaluate(_FLATTEN_SHADOWS)
                html, final_url = await tab.page.content(), tab.page.url
                done = True
        except TimeoutError:
            self._event("page_timeout")
            if not await self._responsive(browser):
                await self._kill_hung()
            raise FetchTimeout(
                f"the browser did not finish rendering {document.url} within {self.options.page_timeout_s:g} s"
            ) from None
        except FetchError:
            raise
        except Exception as exc:  # noqa: BLE001 - Playwright's errors, translated for the caller
            if state.crashed or "crash" in str(exc).lower():
                self._event("renderer_crashed")
                if self.watch.killed_for_memory > state.memory_kills:
                    raise FetchError(
                        f"the page at {document.url} used more than {self.options.renderer_memory_mb} MB of "
                        "memory; its renderer was stopped"
                    ) from None
                raise FetchError(f"the page at {document.url} crashed the browser's renderer") from None
            if not browser.is_connected() or not self._running():
                raise BrowserGone(f"the browser stopped while rendering {document.url}; try again") from None
            raise FetchError(f"the browser could not render {document.url}: {_first_line(exc)}") from None
        finally:
            slot.close_connections()
            if not (done and await self._close_popups(index) and await self._reset_tab(index)):
                await self._discard_tab(index)
        self._event("rendered")
        headers = {**document.headers, "content-type": "text/html; charset=utf-8"}
        return replace(
            document,
            url=final_url or document.url,
            media_type="text/html",
            charset="utf-8",
            body=html.encode("utf-8", errors="replace"),
            headers=headers,
            fetched_with="browser",
        )

    async def _open_tab(self, browser: Any, slot: Slot) -> _Tab:
        """A context of its own (its proxy port is the slot's) and one page in it, with the page rules set."""
        context = await browser.new_context(
            proxy={"server": slot.url},
            service_workers="block",
            accept_downloads=False,
            user_agent=self.options.user_agent,
            viewport=_VIEWPORT,
        )
        try:
            await context.add_init_script(_NO_POPUPS)
            page = await context.new_page()
        except BaseException:
            await self._close_context(context)
            raise
        tab = _Tab(browser, context, page)

        async def route(route: Any, request: Any) -> None:
            await self._route(route, request, tab)

        def on_console(message: Any) -> None:
            if _LOCAL_RESOURCE in message.text:  # file:// and other local URLs, refused by Chromium itself
                self._event("refused")

        def on_new_page(other: Any) -> None:
            if other is not page:  # a popup (closed and counted by _watch_targets already): closed here too
                task = asyncio.ensure_future(_close_quietly(other))
                tab.tasks.add(task)
                task.add_done_callback(tab.tasks.discard)

        await context.route("**/*", route)
        context.on("page", on_new_page)
        devtools = await context.new_cdp_session(page)
        devtools.on("Page.windowOpen", lambda _event: self._event("popup_blocked"))
        await devtools.send("Page.enable")
        page.on("crash", tab.crashed)
        page.on("console", on_console)
        page.on("request", tab.request_started)
        page.on("requestfinished", tab.request_ended)
        page.on("requestfailed", tab.request_ended)
        return tab

    async def _close_popups(self, index: int) -> bool:
        """Every page of the slot's context but its own closed (windows opened late included) before the call
        returns, so the browser's processes are back to their idle count. False: the tab is discarded."""
        tab = self._tabs.get(index)
        if tab is None:
            return False
        await self._close_opened_windows()
        try:
            with anyio.fail_after(5):
                if tab.tasks:
                    await asyncio.gather(*tab.tasks, return_exceptions=True)
                for other in tab.context.pages:
                    if other is not tab.page:
                        await other.close()
        except Exception:  # noqa: BLE001 - a context that cannot close its pages is closed as a whole
            return False
        return True

    async def _reset_tab(self, index: int) -> bool:
        """Ready the slot's tab for the next page: scripts stopped (about:blank), cookies gone. False: discard it."""
        tab = self._tabs.get(index)
        if tab is None:
            return False
        tab.stop()
        try:
            with anyio.fail_after(5):
                await tab.page.goto("about:blank")
                await tab.context.clear_cookies()
        except Exception:  # noqa: BLE001 - a tab that cannot be reset is closed instead
            return False
        return True

    async def _discard_tab(self, index: int) -> None:
        tab = self._tabs.pop(index, None)
        if tab is not None:
            tab.stop()
            await self._close_context(tab.context)

    async def _route(self, route: Any, request: Any, tab: _Tab) -> None:
        """The main document from ``direct``; nothing for popups, other navigations or blocked resource types."""
        try:
            state, document = tab.state, tab.document
            try:
                frame = request.frame
            except Exception:  # noqa: BLE001 - a popup's first navigation comes before its frame exists
                frame = None
            if state is None or document is None or frame is None or frame.page is not tab.page:
                await route.abort("aborted")  # between pages, or a popup
                return
            if request.is_navigation_request() and frame.parent_frame is None:
                if state.document_served:  # the page is read where it was asked: no navigating away
                    await route.abort("aborted")  # (an aborted navigation leaves the page as it is)
                    return
                state.document_served = True
                media = document.media_type or "text/html"
                content_type = f"{media}; charset={document.charset}" if document.charset else media
                await route.fulfill(status=200, headers={"content-type": content_type}, body=document.body)
                return
            if request.resource_type in self.options.block:
                await route.abort("blockedbyclient")
                return
            if tab.rule is not None and tab.rule.refusal(request.url) is not None:  # before it leaves the browser
                self._event("subresource_blocked")
                await route.abort("blockedbyclient")
                return
            await route.continue_()
        except Exception:  # noqa: BLE001 - the page closed or crashed meanwhile: nothing goes out
            with contextlib.suppress(Exception):
                await route.abort("aborted")
            return None

    async def _settle(self, page: Any, state: _PageState, slot: Slot) -> None:
        """Wait for the article, then scroll down the page a screen at a time, all within ``settle_s``.

        Settled: the network is quiet and the main text (outside site chrome) is at least ``min_chars`` and has
        not grown for ``_STABLE_S``; the first wait takes at most half the budget. Scrolling goes one viewport
        per step (at most ``scroll_screens`` steps) so sections that load when scrolled into view load; it
        stops at the bottom unless the page grew there, and at the latest when the bottom was reached
        ``scrolls`` times (endless pages); then the main text settles once more.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.settle_s
        # at most half the budget before scrolling: a page whose first screen is short may fill as it scrolls
        await self._settle_text(page, state, slot, loop.time() + self.options.settle_s / 2)
        loads = steps = 0
        height = 0
        while steps < self.options.scroll_screens and loop.time() < deadline and not slot.over_budget:
            at_bottom, new_height = await page.evaluate(_SCROLL_STEP)
            steps += 1
            if steps == 1 and at_bottom and new_height <= _VIEWPORT["height"]:
                return  # the whole page is in view: nothing to scroll to
            started = state.started
            await asyncio.sleep(0.05)
            await _quiet(state, deadline, slot)
            if at_bottom:  # reaching the bottom may have asked for more (endless pages): bounded by ``scrolls``
                loads += 1
                grown = state.started != started or await page.evaluate(_HEIGHT) > max(height, new_height)
                if not grown or loads >= self.options.scrolls:
                    break
            height = max(height, new_height)
        await self._settle_text(page, state, slot, deadline)

    async def _settle_text(self, page: Any, state: _PageState, slot: Slot, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        last, since = -1, loop.time()
        while loop.time() < deadline and not slot.over_budget:
            await _quiet(state, deadline, slot)
            length = await page.evaluate(_MAIN_TEXT)
            now = loop.time()
            if length != last:
                last, since = length, now
            elif length >= self.options.min_chars and now - since >= _STABLE_S:
                return
            await asyncio.sleep(_TEXT_POLL_S)

    async def _close_context(self, context: Any) -> None:
        if context is None:
            return
        try:
            with anyio.fail_after(5):
                await context.close()
        except TimeoutError:
            await self._kill_hung()  # a browser that cannot close a context is hung
        except Exception:  # noqa: BLE001 - already gone with a crashed browser
            pass


async def _quiet(state: _PageState, deadline: float, slot: Slot) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < deadline and not slot.over_budget:
        if state.inflight == 0 and loop.time() - state.last_activity >= _QUIET_S:
            return
        await asyncio.sleep(_POLL_S)


async def _close_quietly(page: Any) -> None:
    with contextlib.suppress(Exception):
        await page.close()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123 - a tiny procfs read
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def create(config: FetcherConfig) -> BrowserFetcher:
    fetch = config.fetch
    policy = AddressPolicy.from_strings(fetch.allow_private_networks, fetch.allowed_addresses)
    return BrowserFetcher(
        config.direct, policy, BrowserOptions.from_settings(fetch), resolver=config.resolver, on_event=config.event
    )
