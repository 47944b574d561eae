"""The in-process diffusers renderer over tiny Qwen-Image pipelines loaded by path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from render_tools.base import InvalidRenderRequest, Renderer, RenderRequest
from render_tools.diffusers_renderer import DiffusersOptions, DiffusersRenderer, QwenImageEngine

pytestmark = pytest.mark.slow


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.anyio
async def test_text_only_render_is_seeded_and_sized(shared_engine: QwenImageEngine) -> None:
    renderer = DiffusersRenderer(shared_engine.options, engine=shared_engine)
    assert isinstance(renderer, Renderer)
    first = await renderer.render(RenderRequest(prompt="a red fox in the snow", width=64, height=96, seed=3, steps=3))
    again = await renderer.render(RenderRequest(prompt="a red fox in the snow", width=64, height=96, seed=3, steps=3))
    other = await renderer.render(RenderRequest(prompt="a red fox in the snow", width=64, height=96, seed=4, steps=3))
    assert first.image.size == (64, 96) and first.image.mode == "RGB"
    assert first.seed == 3 and first.model == shared_engine.options.model
    assert first.elapsed_s > 0
    assert np.array_equal(pixels(first.image), pixels(again.image))
    assert not np.array_equal(pixels(first.image), pixels(other.image))


@pytest.mark.anyio
@pytest.mark.parametrize("count", [1, 2, 3])
async def test_edit_render_with_references(
    shared_engine: QwenImageEngine, references: list[Image.Image], count: int
) -> None:
    renderer = DiffusersRenderer(shared_engine.options, engine=shared_engine)
    request = RenderRequest(
        prompt="put the hat on the cat", reference_images=references[:count], width=64, height=96, seed=5, steps=2
    )
    result = await renderer.render(request)
    assert result.image.size == (64, 96)
    assert result.model == shared_engine.options.edit_model
    assert result.extra["steps"] == 2


def test_every_reference_reaches_the_model(shared_engine: QwenImageEngine, references: list[Image.Image]) -> None:
    def render(refs: list[Image.Image]) -> np.ndarray:
        request = RenderRequest(prompt="a hat", reference_images=refs, width=64, height=64, seed=5, steps=2)
        return pixels(shared_engine.render_batch([request.validated()])[0].image)

    base = render(references[:3])
    assert not np.array_equal(base, render([references[0], references[1], references[3]]))
    assert not np.array_equal(base, render([references[3], references[1], references[2]]))


def test_batched_text_renders_match_single_renders(shared_engine: QwenImageEngine) -> None:
    requests = [
        RenderRequest(prompt=prompt, width=64, height=64, seed=seed, steps=2).validated()
        for prompt, seed in (("a fox", 11), ("a lighthouse at night", 12), ("a cat", 13))
    ]
    batched = shared_engine.render_batch(requests)
    assert [r.extra["batch_size"] for r in batched] == [3, 3, 3]
    for request, result in zip(requests, batched, strict=True):
        alone = shared_engine.render_batch([request])[0]
        assert result.seed == request.seed
        # Same seed, same prompt: the same picture up to padding-induced rounding.
        assert np.abs(pixels(result.image) - pixels(alone.image)).max() <= 3


def test_several_images_per_request(shared_engine: QwenImageEngine, references: list[Image.Image]) -> None:
    request = RenderRequest(
        prompt="a hat", reference_images=references[:1], width=64, height=64, seed=1, steps=2, num_images=2
    )
    (result,) = shared_engine.render_batch([request.validated()])
    assert len(result.images) == 2
    assert not np.array_equal(pixels(result.images[0]), pixels(result.images[1]))


@pytest.mark.anyio
async def test_missing_models_and_sizes_the_model_cannot_draw(tiny_models: DiffusersOptions, references) -> None:
    text_only = DiffusersRenderer(DiffusersOptions(model=tiny_models.model))
    try:
        with pytest.raises(InvalidRenderRequest, match="reference images need an edit model"):
            await text_only.render(
                RenderRequest(prompt="x", reference_images=references[:1], width=64, height=64, steps=2)
            )
        # The tiny VAE downsamples 16x, so sides must be multiples of 32 for it.
        with pytest.raises(InvalidRenderRequest, match="multiple of 32"):
            await text_only.render(RenderRequest(prompt="x", width=80, height=64, steps=2))
    finally:
        await text_only.aclose()
    edit_only = DiffusersRenderer(DiffusersOptions(edit_model=tiny_models.edit_model))
    with pytest.raises(InvalidRenderRequest, match="text-only rendering needs a Qwen-Image model"):
        await edit_only.render(RenderRequest(prompt="x", width=64, height=64, steps=2))
    await edit_only.aclose()


@pytest.mark.anyio
async def test_a_model_that_does_not_exist_is_a_clear_error(tmp_path) -> None:
    from render_tools.base import RenderError

    renderer = DiffusersRenderer(DiffusersOptions(model=str(tmp_path / "no-such-model")))
    with pytest.raises(RenderError, match="cannot load QwenImagePipeline"):
        await renderer.render(RenderRequest(prompt="x", width=64, height=64, steps=2))


@pytest.mark.anyio
async def test_lora_is_loaded_and_fused(
    tiny_models: DiffusersOptions, tmp_path, shared_engine: QwenImageEngine
) -> None:
    import torch
    from diffusers import QwenImagePipeline, QwenImageTransformer2DModel
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = QwenImageTransformer2DModel.from_pretrained(tiny_models.model, subfolder="transformer")
    transformer.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    )
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * 0.5)
    QwenImagePipeline.save_lora_weights(
        tmp_path / "lora", transformer_lora_layers=get_peft_model_state_dict(transformer)
    )
    lora_file = next((tmp_path / "lora").glob("*.safetensors"))

    request = RenderRequest(prompt="a fox", width=64, height=64, seed=2, steps=2)
    base = shared_engine.render_batch([request.validated()])[0].image
    with_lora = DiffusersRenderer(DiffusersOptions(model=tiny_models.model, lora=str(lora_file)))
    try:
        image = (await with_lora.render(request)).image
    finally:
        await with_lora.aclose()
    assert not np.array_equal(pixels(base), pixels(image))
