"""Content-Encoding decoding with a byte cap at every layer, applied as the bytes stream in.

httpx decodes a whole network chunk at once, so a few kilobytes of
``Content-Encoding: gzip, gzip`` can expand to gigabytes inside one call
before any size check runs. Here every layer decompresses at most
``PIECE`` bytes per step (zlib's ``max_length``) and counts what it produced,
so no layer ever holds more than its cap plus one piece.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

PIECE = 64 * 1024
MAX_ENCODINGS = 2
SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")


class DecodeError(ValueError):
    """The body cannot be decoded: an unsupported, too deeply stacked or corrupt encoding."""


class DecodedTooLarge(DecodeError):
    """A decoding layer produced more than the cap."""

    def __init__(self, layer: str, limit: int) -> None:
        super().__init__(f"the {layer}-encoded body expands beyond {limit} bytes")
        self.layer = layer
        self.limit = limit


class _ZlibLayer:
    """gzip (multi-member) or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._gzip = name in ("gzip", "x-gzip")
        self._raw_fallback = not self._gzip
        self._inflater = self._new()
        self._started = False

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self._gzip:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                out = self._inflater.decompress(data, PIECE)
            except zlib.error as exc:
                if self._raw_fallback and not self._started:  # deflate without the zlib header
                    self._raw_fallback = False
                    self._inflater = self._new(raw=True)
                    continue
                raise DecodeError(f"corrupt {self.name} data ({exc})") from None
            self._started = True
            self._raw_fallback = False
            data = self._inflater.unconsumed_tail
            if out:
                yield out
            if self._inflater.eof:
                rest = self._inflater.unused_data
                if not (self._gzip and rest.strip(b"\0")):
                    return  # trailing bytes after the stream are ignored, as browsers do
                self._inflater = self._new()  # the next gzip member
                data = rest
                continue
            if not data and len(out) < PIECE:
                return


class BoundedDecoder:
    """Decodes a body sent with ``Content-Encoding: <header>``, capping every layer's output at ``max_bytes``."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        names = [token.strip().lower() for token in (content_encoding or "").split(",") if token.strip()]
        names = [name for name in names if name != "identity"]
        for name in names:
            if name not in SUPPORTED_ENCODINGS:
                raise DecodeError(f"unsupported content encoding {name!r} (supported: gzip, deflate)")
        if len(names) > MAX_ENCODINGS:
            raise DecodeError(f"{len(names)} stacked content encodings ({', '.join(names)}); at most {MAX_ENCODINGS}")
        # Applied in header order, so undone in reverse.
        self._layers = [_ZlibLayer(name) for name in reversed(names)]
        self._produced = [0] * len(self._layers)
        self._max = max_bytes

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """Decoded pieces for the next raw chunk (each at most ``PIECE`` bytes when encoded)."""
        return self._through(0, raw)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._layers):
            if data:
                yield data
            return
        layer = self._layers[index]
        for piece in layer.feed(data):
            self._produced[index] += len(piece)
            if self._produced[index] > self._max:
                raise DecodedTooLarge(layer.name, self._max)
            yield from self._through(index + 1, piece)
