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
