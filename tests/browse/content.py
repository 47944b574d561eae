"""Documents the loopback web of the browse tests serves: articles, PDFs, images of every kind."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

ARTICLE_KEEP = [
    "The Bellmoor lighthouse was first lit on 14 March 1861",
    "Its lantern room holds a second-order Fresnel lens",
    "painted in red and white bands",
]
ARTICLE_DROP = [
    "Subscribe to our newsletter",
    "Buy cheap watches now",
    "Great article, thanks for sharing",
    "Copyright 2024 Coastal Heritage Media",
    "Privacy policy",
]


def article_html(title: str = "The Bellmoor Lighthouse") -> str:
    """A realistic page: navigation, ads, a sidebar, comments and a footer around one article."""
    body = "\n".join(
        f"<p>{text}</p>"
        for text in [
            "The Bellmoor lighthouse was first lit on 14 March 1861 after six years of construction on the "
            "granite headland north of the harbour, replacing a coal beacon that had burned there since 1790.",
            "The tower stands 38 metres tall and is painted in red and white bands, so that sailors can tell it "
            "apart from the plain white tower at Carrow Point by day.",
            "Its lantern room holds a second-order Fresnel lens made in Paris, turned by a clockwork mechanism "
            "that the keepers wound every four hours until the station was electrified in 1957.",
            "Three keepers and their families lived in the cottages at the foot of the tower. Supplies came by "
            "boat once a fortnight, and in winter storms the station was often cut off for a month or more.",
            "The light was automated in 1989 and the last keeper left in the spring of that year. The cottages "
            "are now a small museum of coastal life that opens from Easter to October.",
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | Coastal Heritage</title>
<meta name="description" content="History of the Bellmoor lighthouse">
<meta property="article:published_time" content="2023-05-17T09:00:00Z"></head>
<body>
<header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/shop">Shop</a></li><li><a href="/about">About us</a></li></ul></nav></header>
<div class="ad banner" id="top-ad"><a href="/ads/1">Buy cheap watches now! 90% off today only</a></div>
<main><article class="post">
<h1>{title}</h1>
<p class="byline">By Morwenna Pascoe, 17 May 2023</p>
{body}
</article>
<aside class="sidebar"><h3>Subscribe to our newsletter</h3><form><input name="email"></form>
<ul class="related"><li><a href="/r/1">Ten lighthouses you must visit</a></li></ul></aside>
<section id="comments" class="comments"><h3>Comments</h3>
<div class="comment"><p>Great article, thanks for sharing! Visited last summer.</p></div>
<div class="comment"><p>My grandfather was a keeper there.</p></div></section>
</main>
<footer><p>Copyright 2024 Coastal Heritage Media. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/terms">Terms</a></p></footer>
</body></html>"""


def long_text(paragraphs: int = 60) -> str:
    return "\n\n".join(
        f"Paragraph {i}: the harbour records for year {1800 + i} list {i * 7} ships and {i * 3} storms."
        for i in range(paragraphs)
    )


def text_stream(lines: list[str]) -> bytes:
    """A PDF content stream writing ``lines`` in Helvetica, one under the other."""
    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def pdf_document(page_streams: list[bytes], *, title: str | None = None, flate: bool = False) -> bytes:
    """A minimal valid PDF, one page per content stream (written by hand: pypdf cannot lay out text);
    ``flate`` compresses the streams (FlateDecode)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for stream in page_streams:
        data = zlib.compress(stream, 9) if flate else stream
        encoding = b" /Filter /FlateDecode" if flate else b""
        objects.append(b"<< /Length " + str(len(data)).encode() + encoding + b" >>\nstream\n" + data + b"\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    info = ""
    if title is not None:
        objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
        info = f" /Info {len(objects)} 0 R"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def pdf_bytes(lines: list[str], title: str = "Keeper's Log") -> bytes:
    """A PDF with one page of text and a title."""
    return pdf_document([text_stream(lines)], title=title)


def jpeg_bytes(size: tuple[int, int] = (320, 240), color: tuple[int, int, int] = (30, 90, 160)) -> bytes:
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 8):  # some structure so JPEG sizes differ by content
        img.putpixel((x, x % size[1]), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def truncated_jpeg_bytes() -> bytes:
    """A JPEG whose header is intact but whose scan data stops halfway."""
    img = Image.effect_noise((300, 300), 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    return data[: len(data) // 2]


def png_rgba_bytes(size: tuple[int, int] = (200, 200)) -> bytes:
    img = Image.new("RGBA", size, (0, 200, 0, 0))
    for x in range(size[0] // 4, size[0] * 3 // 4):
        for y in range(size[1] // 4, size[1] * 3 // 4):
            img.putpixel((x, y), (0, 200, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def animated_gif_bytes(size: tuple[int, int] = (120, 100)) -> bytes:
    frames = [Image.new("RGB", size, color) for color in ((220, 20, 20), (20, 20, 220), (20, 220, 20))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png_bytes(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3 * width
    idat = zlib.compress(row * 16, 9)  # a few rows of the claimed image: small file, huge canvas
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
