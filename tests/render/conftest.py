"""Fixtures of the render tests: tiny Qwen-Image pipelines built once per session, test images, engines."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest
from PIL import Image

from render_tools.base import RenderRequest, RenderResult
from render_tools.diffusers_renderer import DiffusersOptions, QwenImageEngine
from tests.support.env import clear_settings_environment
from tests.support.tiny_qwen_image import build_tiny_qwen_image, build_tiny_qwen_image_edit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own GEN_SEARCHER_* or provider variables must not leak into these tests."""
    clear_settings_environment(monkeypatch)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DiffusersOptions]:
    """Tiny text-to-image and edit pipelines saved to disk, as options that load them by path."""
    import torch

    # Tiny models gain nothing from intra-op threads, and they lose a lot on a shared CI machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-qwen-image")
    yield DiffusersOptions(model=str(build_tiny_qwen_image(root)), edit_model=str(build_tiny_qwen_image_edit(root)))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_engine(tiny_models: DiffusersOptions) -> QwenImageEngine:
    """One loaded engine for tests that only read from it (rendering does not change it)."""
    engine = QwenImageEngine(tiny_models, "cpu")
    engine.load()
    return engine


def solid(color: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> Image.Image:
    image = Image.new("RGB", size, color)
    # A little structure so that images differ beyond their mean colour.
    for x in range(0, size[0], 8):
        image.putpixel((x, size[1] // 2), (255 - color[0], 255 - color[1], 255 - color[2]))
    return image


@pytest.fixture
def references() -> list[Image.Image]:
    return [solid((220, 30, 30)), solid((30, 200, 40), (64, 64)), solid((20, 40, 230), (48, 80)), solid((9, 9, 9))]


class GatedEngine:
    """A real engine whose renders wait for ``gate`` (to hold a worker busy) and can fail on demand.

    ``fail_renders``: the next that many render calls raise a device-fault-like
    RuntimeError, the way a CUDA error surfaces from torch.
    """

    def __init__(self, inner: QwenImageEngine, controls: EngineControls) -> None:
        self.inner = inner
        self.controls = controls

    def load(self) -> None:
        self.controls.loads += 1
        if self.controls.fail_loads > 0:
            self.controls.fail_loads -= 1
            raise RuntimeError("CUDA error: no CUDA-capable device is detected")
        self.inner.load()

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        self.controls.batch_sizes.append(len(requests))
        self.controls.started.set()
        if not self.controls.gate.wait(timeout=30):
            raise TimeoutError("test gate never opened")
        with self.controls.lock:
            fail = self.controls.fail_renders > 0
            if fail:
                self.controls.fail_renders -= 1
        if fail:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ...")
        if len(requests) > self.controls.max_ok_batch:
            raise MemoryError(f"CUDA out of memory at batch {len(requests)}")
        return self.inner.render_batch(requests)

    def close(self) -> None:
        self.controls.closes += 1


class EngineControls:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.fail_renders = 0
        self.fail_loads = 0
        self.max_ok_batch = 1_000
        self.loads = 0
        self.closes = 0
        self.batch_sizes: list[int] = []


@pytest.fixture
def controls() -> EngineControls:
    return EngineControls()


@pytest.fixture
def gated_factory(tiny_models: DiffusersOptions, controls: EngineControls):
    """Engine factory (the render server's seam) building real tiny engines wrapped in a GatedEngine."""

    def factory(device: str) -> GatedEngine:
        return GatedEngine(QwenImageEngine(tiny_models, device), controls)

    return factory
