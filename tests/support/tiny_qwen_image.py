"""Tiny random-weight Qwen-Image pipelines for tests: the builders live in :mod:`render_tools.tiny_pipeline`
(``gen-searcher demo`` builds one too); this module keeps the tests' import path."""

from __future__ import annotations

from render_tools.tiny_pipeline import (
    SIZE_MULTIPLE,
    SPECIAL_TOKENS,
    TEXT_HIDDEN,
    build_processor,
    build_tiny_qwen_image,
    build_tiny_qwen_image_edit,
    build_tokenizer,
    qwen_image_scheduler,
    special_token_ids,
    tiny_components,
    train_byte_level_bpe,
)

__all__ = [
    "SIZE_MULTIPLE",
    "SPECIAL_TOKENS",
    "TEXT_HIDDEN",
    "build_processor",
    "build_tiny_qwen_image",
    "build_tiny_qwen_image_edit",
    "build_tokenizer",
    "qwen_image_scheduler",
    "special_token_ids",
    "tiny_components",
    "train_byte_level_bpe",
]
