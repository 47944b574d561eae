"""The generate stage: turn a benchmark item into an image file.

Three generators share one small protocol (:class:`Generator`):

* :class:`DirectGenerator` -- the prompt goes straight to a renderer (plain
  Qwen-Image, ``--policy none``);
* :class:`PolicyGenerator` -- a Gen-Searcher episode over an MCP tool server
  writes the grounded prompt and picks references, then the renderer draws it
  (``--policy MODEL_URL`` for a policy model, ``--policy baseline`` for the
  no-model search baseline);
* :class:`ExistingImages` -- the images already exist (``bench score``);
  nothing is generated, only found.

A generator raises :class:`GenerationError` for a failed item; the runner
records it and moves on.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import Any, Protocol

import anyio

from benchmark.datasets import Item
from gen_searcher_core.episode_record import EpisodeRecord, Termination
from gen_searcher_core.errors import UserFacingError


class GenerationError(UserFacingError):
    """One item could not be generated; the message says why.

    ``transient`` failures (renderer down or busy, policy server or tool session
    lost) are not the system's answer: the runner does not record them, so a
    rerun tries those items again.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass
class Generation:
    """What the generate stage records for one item (besides the image file)."""

    image: Path
    gen_prompt: str | None = None
    references: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    name: str

    async def generate(self, item: Item, out_path: Path) -> Generation: ...

    async def aclose(self) -> None: ...


def safe_name(item_id: str) -> str:
    """A file name for an item id (ids may contain slashes or spaces)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:80]
    if clean != item_id:
        clean += "-" + sha1(item_id.encode()).hexdigest()[:8]
    return clean


def item_seed(base_seed: int, item_id: str) -> int:
    """A per-item seed that does not depend on run order or concurrency."""
    return (base_seed * 1_000_003 + zlib.crc32(item_id.encode())) % (2**31)


def _save_png_atomic(image: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


@dataclass
class RenderOptions:
    width: int = 1024
    height: int = 1024
    steps: int | None = None
    seed: int = 42


async def _render(renderer: Any, options: RenderOptions, item: Item, prompt: str, refs: list[Any], out: Path) -> int:
    from render_tools.base import InvalidRenderRequest, RenderError, RenderRequest

    seed = item_seed(options.seed, item.id)
    request = RenderRequest(
        prompt=prompt,
        reference_images=tuple(refs),
        width=options.width,
        height=options.height,
        seed=seed,
        steps=options.steps,
    )
    try:
        result = await renderer.render(request)
    except RenderError as exc:
        transient = not isinstance(exc, InvalidRenderRequest)
        raise GenerationError(f"render failed: {exc}", transient=transient) from None
    await anyio.to_thread.run_sync(_save_png_atomic, result.image, out)
    return int(result.seed)


class DirectGenerator:
    """Render the benchmark prompt as is (no search)."""

    name = "none"

    def __init__(self, renderer: Any, options: RenderOptions | None = None) -> None:
        self.renderer = renderer
        self.options = options or RenderOptions()

    async def generate(self, item: Item, out_path: Path) -> Generation:
        seed = await _render(self.renderer, self.options, item, item.prompt, [], out_path)
        return Generation(image=out_path, gen_prompt=item.prompt, seed=seed)

    async def aclose(self) -> None:
        await self.renderer.aclose()


#: ``run_episode(item) -> (EpisodeRecord, {store_id: PIL image of each generator reference})``
EpisodeRunner = Callable[[Item], Awaitable[tuple[EpisodeRecord, dict[str, Any]]]]


class PolicyGenerator:
    """Run a Gen-Searcher episode, then render its grounded prompt with its first references."""

    name = "policy"

    def __init__(
        self,
        run_episode: EpisodeRunner,
        renderer: Any,
        options: RenderOptions | None = None,
        closer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.run_episode = run_episode
        self.renderer = renderer
        self.options = options or RenderOptions()
        self._closer = closer

    async def generate(self, item: Item, out_path: Path) -> Generation:
        started = time.monotonic()
        try:
            record, images = await self.run_episode(item)
        except GenerationError:
            raise
        except Exception as exc:  # noqa: BLE001  model server / tool session failures end this item only
            raise GenerationError(f"policy episode failed: {type(exc).__name__}: {exc}", transient=True) from None
        if record.answer is None:
            # "error": the driver failed (model server, tool session), not the policy.
            raise GenerationError(
                f"policy gave no answer ({record.termination}: {record.detail or ''})",
                transient=record.termination == Termination.ERROR,
            )
        answer = record.answer
        refs = [images[store_id] for store_id in answer.generator_image_ids if store_id in images]
        seed = await _render(self.renderer, self.options, item, answer.gen_prompt, refs, out_path)
        return Generation(
            image=out_path,
            gen_prompt=answer.gen_prompt,
            references=[ref.model_dump(mode="json", exclude_none=True) for ref in answer.references],
            seed=seed,
            detail={
                "termination": str(record.termination),
                "model_calls": record.model_calls,
                "tool_calls": record.tool_calls,
                "format_errors": record.format_errors,
                "episode_s": round(time.monotonic() - started, 3),
            },
        )

    async def aclose(self) -> None:
        if self._closer is not None:
            await self._closer()
        await self.renderer.aclose()


class ExistingImages:
    """Find images made elsewhere: ``item.output_path`` (results files) or ``<folder>/<id>.png``."""

    name = "existing"

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder

    async def generate(self, item: Item, out_path: Path) -> Generation:
        if item.success is False:
            raise GenerationError("the system reported a failed generation (success: false)")
        if item.output_path is not None:
            candidates = [item.output_path]
        else:
            folder = self.folder or out_path.parent
            candidates = [folder / f"{safe_name(item.id)}{ext}" for ext in (".png", ".jpg", ".jpeg", ".webp")]
        for path in candidates:
            if await anyio.Path(path).is_file():
                return Generation(image=path)
        raise GenerationError(f"no image found for item {item.id} (looked for {candidates[0]})")

    async def aclose(self) -> None:
        return None
