"""Open pages from disk in Debian's headless Chromium through Playwright, and look at them.

The tests are skipped (not failed) where Chromium or Playwright is missing; Playwright's
own browser download is never used.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHOTS = Path("/tmp/gallery-shots")  # one screenshot of each page type, for people to look at
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class OpenedPage:
    page: Any
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    network: list[str] = field(default_factory=list)  # requests for anything but file: and data: URLs

    def undecoded_images(self) -> list[str]:
        """Load every image now (lazy ones too) and return the sources of those that did not decode."""
        return self.page.evaluate(
            """async () => {
                const images = Array.from(document.images);
                images.forEach((image) => { image.loading = "eager"; });
                await Promise.all(images.map((image) => image.decode().catch(() => null)));
                return images.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.getAttribute("src"));
            }"""
        )

    def visible(self, selector: str, attribute: str) -> list[str]:
        """``attribute`` of the elements matching ``selector`` that are shown, in the order they are shown
        (CSS ``order``, then document order)."""
        return self.page.eval_on_selector_all(
            selector,
            "(els) => els.map((e, i) => [Number(getComputedStyle(e).order), i, e])"
            ".sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2])"
            f".filter((e) => !e.hidden).map((e) => e.getAttribute({attribute!r}))",
        )

    def pwned(self) -> Any:
        return self.page.evaluate("window.__pwned")

    def screenshot(self, path: Path, name: str) -> Path:
        """Save a screenshot under ``path`` and copy it to :data:`SHOTS`."""
        self.undecoded_images()  # the lazy thumbnails in view are drawn before the picture is taken
        shot = path / f"{name}.png"
        self.page.screenshot(path=str(shot))
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SHOTS / shot.name)
        return shot


def open_page(browser: Any, path: Path, *, width: int = 1280, height: int = 1000) -> OpenedPage:
    page = browser.new_page(viewport={"width": width, "height": height})
    opened = OpenedPage(page)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            opened.network.append(url)
            route.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return opened


LAYOUT_PROBLEMS = """() => {
    const problems = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) {
        problems.push(`page is ${root.scrollWidth} px wide in a ${root.clientWidth} px window`);
    }
    const shown = (e) => e.getClientRects().length > 0;
    document.querySelectorAll(".dims").forEach((dims) => {
        if (shown(dims) && dims.scrollWidth > dims.clientWidth + 1) {
            problems.push(`dimension rows are wider than their box: ${dims.textContent.trim().slice(0, 40)}`);
        }
        const parts = Array.from(dims.children);
        for (let i = 0; i + 2 < parts.length; i += 3) {
            if (!shown(parts[i])) { continue; }
            const [label, bar, value] = parts.slice(i, i + 3).map((e) => e.getBoundingClientRect());
            const spills = parts[i].scrollWidth > parts[i].clientWidth + 1;
            if (spills || label.right > bar.left + 1 || bar.right > value.left + 1 || bar.width < 8) {
                problems.push(`bar overlaps its label: ${parts[i].textContent}`);
            }
        }
    });
    document.querySelectorAll(".badge").forEach((badge) => {
        if (!shown(badge)) { return; }
        const box = badge.closest("article, section, .panel, details") || document.body;
        const b = badge.getBoundingClientRect(), c = box.getBoundingClientRect();
        if (badge.scrollWidth > badge.clientWidth + 1 || b.right > c.right + 1 || b.left < c.left - 1) {
            problems.push(`badge clipped: ${badge.textContent}`);
        }
    });
    document.querySelectorAll("table").forEach((table) => {
        const holder = table.parentElement;
        const scrolls = holder && getComputedStyle(holder).overflowX === "auto";
        if (shown(table) && table.getBoundingClientRect().right > root.clientWidth + 1 && !scrolls) {
            problems.push("a wide table does not scroll in its own box");
        }
    });
    return problems;
}"""


def layout_problems(opened: OpenedPage) -> list[str]:
    """What breaks a layout: horizontal overflow, bars over their labels, clipped badges, wide tables."""
    return list(opened.page.evaluate(LAYOUT_PROBLEMS))


def scrolled_into_view(opened: OpenedPage, element_id: str) -> bool:
    """Whether the element with this id is in the window (after opening the page at ``#id``)."""
    return bool(
        opened.page.evaluate(
            """(id) => { const e = document.getElementById(id); if (!e) { return false; }
                const r = e.getBoundingClientRect(); return r.top >= -2 && r.top < window.innerHeight; }""",
            element_id,
        )
    )


def open_at(browser: Any, path: Path, fragment: str, *, width: int, height: int = 900) -> OpenedPage:
    """Open ``path#fragment`` (a deep link) at this window size."""
    page = browser.new_page(viewport={"width": width, "height": height})
    opened = OpenedPage(page)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.goto(f"{path.as_uri()}#{fragment}")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # the browser scrolls to the fragment once the layout settles
    return opened
