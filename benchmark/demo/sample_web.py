"""The demo's sample web: a few pages about a made-up harbour town, each with a picture drawn by Pillow.

The places are invented (Lanternby and its landmarks), so no answer can come
from a model's memory: whatever the pages say is what the search must find.
Pictures are drawn when the web is written (:func:`write_sample_web`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

Colour = tuple[int, int, int]
Draw = Callable[[ImageDraw.ImageDraw, int, int], None]

SKY: Colour = (150, 196, 232)
SEA: Colour = (38, 92, 140)


def _lighthouse(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    draw.rectangle((0, h * 2 // 3, w, h), fill=SEA)
    left, right, top, base = w * 2 // 5, w * 3 // 5, h // 5, h * 2 // 3
    band = (base - top) // 6
    for n in range(6):  # red and white bands, red at the foot
        colour = (196, 40, 40) if n % 2 == 0 else (245, 245, 240)
        draw.rectangle((left, base - (n + 1) * band, right, base - n * band), fill=colour)
    draw.rectangle((left - 6, top - 22, right + 6, top), fill=(60, 170, 90))  # the green lantern room
    draw.polygon([(left - 10, top - 22), (right + 10, top - 22), (w // 2, top - 44)], fill=(40, 40, 40))


def _market(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    draw.rectangle((0, h * 3 // 4, w, h), fill=(120, 110, 100))
    draw.rectangle((w // 8, h // 3, w * 7 // 8, h * 3 // 4), fill=(205, 160, 90))
    for n in range(5):  # five arched glass bays
        x = w // 8 + 12 + n * (w * 3 // 4 - 24) // 5
        bay = (w * 3 // 4 - 24) // 5 - 10
        draw.rectangle((x, h // 2, x + bay, h * 3 // 4), fill=(120, 200, 215))
        draw.ellipse((x, h // 2 - bay // 2, x + bay, h // 2 + bay // 2), fill=(120, 200, 215))
    draw.polygon([(w // 8 - 10, h // 3), (w * 7 // 8 + 10, h // 3), (w // 2, h // 8)], fill=(70, 110, 80))


def _kites(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    draw.rectangle((0, h * 4 // 5, w, h), fill=(225, 205, 150))  # the beach
    for n, colour in enumerate([(240, 120, 30), (90, 60, 170), (240, 200, 40)]):
        cx, cy = w // 4 + n * w // 4, h // 4 + (n % 2) * h // 6
        draw.polygon([(cx, cy - 30), (cx + 22, cy), (cx, cy + 34), (cx - 22, cy)], fill=colour)
        draw.line([(cx, cy + 34), (w // 2, h * 4 // 5)], fill=(60, 60, 60), width=1)


def _bridge(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    draw.rectangle((0, h * 2 // 3, w, h), fill=SEA)
    deck = h * 3 // 5
    draw.rectangle((0, deck, w, deck + 8), fill=(90, 90, 95))
    for x in (w // 4, w * 3 // 4):  # two stone towers
        draw.rectangle((x - 10, h // 4, x + 10, h * 2 // 3), fill=(170, 160, 150))
    draw.arc((w // 4, h // 4 - 40, w * 3 // 4, deck + 40), 20, 160, fill=(200, 60, 50), width=3)


@dataclass(frozen=True)
class Page:
    """One page of the sample web: file name, title, paragraphs and the picture it shows."""

    name: str
    title: str
    paragraphs: tuple[str, ...]
    caption: str
    draw: Draw


PAGES: tuple[Page, ...] = (
    Page(
        "tessel-point-lighthouse.html",
        "Tessel Point Lighthouse, Lanternby",
        (
            "Tessel Point Lighthouse stands on a granite spit at the mouth of Lanternby harbour. Its round "
            "tower is painted in six bands, red and white, with red at the foot.",
            "The lantern room on top is glazed in green glass, so the light shows green to ships at sea; "
            "a black conical roof caps it. Keepers lived in a low cottage behind the tower until 1961.",
        ),
        "Tessel Point Lighthouse: red and white bands under a green lantern room",
        _lighthouse,
    ),
    Page(
        "orrin-glass-market.html",
        "The Orrin Glass Market",
        (
            "The Orrin Glass Market is Lanternby's covered market hall, built of honey-coloured brick with "
            "five tall arched bays of pale blue glass along its front.",
            "A steep green roof with a single gable covers the hall. On winter evenings the glass bays glow "
            "from the stalls inside.",
        ),
        "The Orrin Glass Market: five arched glass bays under a green gable",
        _market,
    ),
    Page(
        "lanternby-kite-day.html",
        "Lanternby Kite Day",
        (
            "Every August, Lanternby Kite Day fills the north beach with diamond kites. Tradition asks for "
            "three colours only: orange, violet and yellow, one for each of the town's old rowing clubs.",
            "The kites fly from the sand below the dunes, their lines gathering toward the judges' stand.",
        ),
        "Kite Day on the north beach: orange, violet and yellow diamond kites",
        _kites,
    ),
    Page(
        "weir-bridge.html",
        "The Weir Bridge of Lanternby",
        (
            "The Weir Bridge carries the coast road over the river mouth on two grey stone towers. A red "
            "iron arch, added in 1904, spans between them above the deck.",
        ),
        "The Weir Bridge: two stone towers and a red iron arch",
        _bridge,
    ),
)

#: What the demo's benchmark asks for; each prompt names a page's subject and its ground truth is that picture.
ITEMS: tuple[tuple[str, str, str], ...] = (
    ("lanternby-01", "Tessel Point Lighthouse in Lanternby at dusk, seen from the harbour", "tessel-point-lighthouse"),
    ("lanternby-02", "The Orrin Glass Market on a winter evening", "orrin-glass-market"),
)


def draw_picture(page: Page, path: Path, size: tuple[int, int] = (320, 240)) -> Path:
    """The page's picture as a PNG at ``path``."""
    image = Image.new("RGB", size, SKY)
    page.draw(ImageDraw.Draw(image), *size)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def page_html(page: Page) -> str:
    """The page as a small HTML document with its picture in a figure."""
    picture = page.name.replace(".html", ".png")
    body = "".join(f"<p>{html.escape(text)}</p>" for text in page.paragraphs)
    title = html.escape(page.title)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><article><h1>{title}</h1>{body}"
        f'<figure><img src="{picture}" alt="{html.escape(page.caption)}" width="320" height="240">'
        f"<figcaption>{html.escape(page.caption)}</figcaption></figure></article></body></html>"
    )


def write_sample_web(root: Path) -> Path:
    """Write every page and its picture under ``root``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for page in PAGES:
        (root / page.name).write_text(page_html(page), encoding="utf-8")
        draw_picture(page, root / page.name.replace(".html", ".png"))
    return root


def page_named(stem: str) -> Page:
    """The page whose file name starts with ``stem``."""
    for page in PAGES:
        if page.name.startswith(stem):
            return page
    raise KeyError(stem)
