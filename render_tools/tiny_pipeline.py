"""Tiny random-weight Qwen-Image pipelines, saved to disk, for tests and ``gen-searcher demo``.

``build_tiny_qwen_image(dir)`` and ``build_tiny_qwen_image_edit(dir)`` write a
complete diffusers pipeline folder (``model_index.json`` plus every component)
and return its path, so tests load it with ``from_pretrained(path)`` exactly as
users load ``Qwen/Qwen-Image`` or ``Qwen/Qwen-Image-Edit-2509``. Nothing is
downloaded: the tokenizer is a byte-level BPE trained on a few sentences with
the ``tokenizers`` library, and every model is built from a small config.

The architecture is the real one at toy width: a Qwen2.5-VL text encoder (with
its vision tower, which the edit pipeline feeds reference images through), the
Qwen-Image MMDiT transformer and the Qwen-Image causal-3D VAE. The VAE
downsamples 16x rather than 8x so that the edit pipeline's 1024x1024-area
reference latents stay small; output sizes must therefore be multiples of 32.

A text-to-image render at 64x64 takes well under a second on CPU; one with
references costs about 0.5 s per reference (the edit pipeline encodes each at
1024x1024 area). Call ``torch.set_num_threads(1)`` in tests: these models gain
nothing from intra-op threads and lose a lot on a shared machine. The pictures
are noise: the pipelines prove the code path, not the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch, transformers and diffusers load only when a pipeline is built
    from diffusers import FlowMatchEulerDiscreteScheduler
    from tokenizers import Tokenizer
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer, Qwen2VLProcessor

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

_CORPUS = [
    "Describe the image by detailing the color, shape, size, texture, quantity, text, spatial relationships"
    " of the objects and background.",
    "Describe the key features of the input image, then explain how the user's text instruction should alter"
    " or modify the image.",
    "Generate a new image that meets the user's requirements while maintaining consistency with the original input.",
    "A red fox sitting in the snow at sunset, photorealistic, detailed fur.",
    "The first reference image shows a lighthouse; draw it at night with stars.",
    "Picture 1: a cat. Picture 2: a hat. Put the hat on the cat.",
    "system user assistant",
]

TEXT_HIDDEN = 32
#: Output sizes of the tiny pipelines must be multiples of this.
SIZE_MULTIPLE = 32


def train_byte_level_bpe(corpus: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE trained on ``corpus``, with the Qwen-VL special tokens first in its vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    return bpe


def build_tokenizer() -> Qwen2Tokenizer:
    """A byte-level BPE Qwen2 tokenizer (vocabulary of a few hundred) with the Qwen-VL special tokens."""
    from transformers import Qwen2Tokenizer

    bpe = train_byte_level_bpe(_CORPUS, vocab_size=400)
    model_state = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(model_state["vocab"])
    merges: Any = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model_state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.model_max_length = 4096
    return tokenizer


def special_token_ids(tokenizer: Qwen2Tokenizer) -> dict[str, int]:
    """The Qwen2.5-VL config fields that name special tokens, for this tokenizer."""
    return {
        "image_token_id": _token_id(tokenizer, "<|image_pad|>"),
        "video_token_id": _token_id(tokenizer, "<|video_pad|>"),
        "vision_start_token_id": _token_id(tokenizer, "<|vision_start|>"),
        "vision_end_token_id": _token_id(tokenizer, "<|vision_end|>"),
    }


def _token_id(tokenizer: Qwen2Tokenizer, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not (isinstance(token_id, int) and token_id >= 0):
        raise ValueError(f"the tiny tokenizer has no {token!r}")
    return token_id


def _build_text_encoder(tokenizer: Qwen2Tokenizer) -> Qwen2_5_VLForConditionalGeneration:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    token_ids: dict[str, Any] = special_token_ids(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": _token_id(tokenizer, "<|endoftext|>"),
            "eos_token_id": _token_id(tokenizer, "<|im_end|>"),
            "pad_token_id": _token_id(tokenizer, "<|endoftext|>"),
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": TEXT_HIDDEN,
            "fullatt_block_indexes": [1],
            "window_size": 112,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **token_ids,
    )
    torch.manual_seed(0)
    model: Qwen2_5_VLForConditionalGeneration = Qwen2_5_VLForConditionalGeneration(config).eval()
    return model


def build_processor(
    tokenizer: Qwen2Tokenizer,
    *,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
    chat_template: str | None = None,
) -> Qwen2VLProcessor:
    """A Qwen2-VL processor (image + video processors) around ``tokenizer``."""
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    # The tiny default pixel budget keeps the vision tower cheap (the edit pipeline hands it 384x384-area images).
    pixels = {"min_pixels": min_pixels, "max_pixels": max_pixels}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**pixels),
        chat_template=chat_template,
    )


def qwen_image_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The flow-matching scheduler with Qwen-Image's published configuration."""
    import math

    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=math.log(3),
        max_shift=math.log(3),
        base_image_seq_len=256,
        max_image_seq_len=8192,
        shift_terminal=0.02,
        time_shift_type="exponential",
    )


def tiny_components(tokenizer: Qwen2Tokenizer) -> dict[str, Any]:
    """Tiny random transformer, VAE, scheduler and text encoder (everything but the processor)."""
    import torch
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel

    torch.manual_seed(0)
    z_dim = 4
    transformer: Any = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=z_dim * 4,
        out_channels=z_dim,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_HIDDEN,
        guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),
    )
    torch.manual_seed(0)
    vae: Any = AutoencoderKLQwenImage(
        base_dim=4,
        z_dim=z_dim,
        dim_mult=[1, 1, 1, 1, 1],
        num_res_blocks=0,
        temperal_downsample=[False, True, True, True],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )
    scheduler = qwen_image_scheduler()
    return {
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "scheduler": scheduler,
        "text_encoder": _build_text_encoder(tokenizer),
        "tokenizer": tokenizer,
    }


def build_tiny_qwen_image(directory: str | Path) -> Path:
    """Write a tiny text-to-image ``QwenImagePipeline`` under ``directory``; return its folder."""
    from diffusers import QwenImagePipeline

    folder = Path(directory) / "tiny-qwen-image"
    tokenizer = build_tokenizer()
    pipe: Any = QwenImagePipeline(**tiny_components(tokenizer))
    pipe.save_pretrained(folder)
    return folder


def build_tiny_qwen_image_edit(directory: str | Path) -> Path:
    """Write a tiny ``QwenImageEditPlusPipeline`` (Qwen-Image-Edit-2509 layout) under ``directory``."""
    from diffusers import QwenImageEditPlusPipeline

    folder = Path(directory) / "tiny-qwen-image-edit-plus"
    tokenizer = build_tokenizer()
    pipe: Any = QwenImageEditPlusPipeline(processor=build_processor(tokenizer), **tiny_components(tokenizer))
    pipe.save_pretrained(folder)
    return folder
