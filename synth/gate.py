"""Stage 2: the gate. Offline checks first (free), then the paid search-necessity check.

Offline, over all prompts at once, in this order (the first failing check is the reason):

1. exact duplicates (normalised text) and near duplicates (MinHash LSH over word shingles);
2. a cap on prompts per primary entity;
3. decontamination against benchmark prompts (KnowGen and WISE read by ``benchmark.datasets``, and
   any other prompt file given): a shared word
   n-gram (8 and 13 by default), or a MinHash Jaccard above the threshold (a reworded prompt).
   Ground-truth images are checked against the benchmark's images later, in ``ground_truth``.

Paid: the teacher writes its plan *without tools*; the judge scores that plan against the
spec. A prompt answered well closed-book teaches no searching: dropped, or kept and flagged.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasketch import MinHash, MinHashLSH

from benchmark.judge import Judge
from synth.items import Item, normalise
from synth.services import ChatService
from synth.settings import GateSettings


@dataclass
class Benchmark:
    """Benchmark prompts and image hashes to keep out of the training data."""

    prompts: list[tuple[str, str]] = field(default_factory=list)  # (source, normalised prompt)
    image_hashes: list[tuple[str, int]] = field(default_factory=list)  # (source, dHash)


def load_benchmarks(settings: GateSettings) -> Benchmark:
    """KnowGen and WISE through the benchmark's own loaders, then any other prompt files."""
    from benchmark.datasets import load_knowgen, load_wise

    bench = load_benchmark(settings.benchmark_files)
    if settings.knowgen_file:
        for item in load_knowgen(Path(settings.knowgen_file)):
            bench.prompts.append((f"knowgen#{item.id}", normalise(item.prompt)))
            if item.gt_image is not None and item.gt_image.is_file():
                bench.image_hashes.append((f"knowgen#{item.id}", dhash(item.gt_image.read_bytes())))
    if settings.wise_dir:
        bench.prompts.extend((f"wise#{item.id}", normalise(item.prompt)) for item in load_wise(Path(settings.wise_dir)))
    return bench


def load_benchmark(files: list[str]) -> Benchmark:
    """Read prompt files (JSON array, object holding an array, or JSONL); images by path, relative to the file."""
    bench = Benchmark()
    for name in files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"benchmark file {path}: {exc.strerror or exc}") from None
        try:
            data: Any = json.loads(text)
            records = data if isinstance(data, list) else next(v for v in data.values() if isinstance(v, list))
        except (json.JSONDecodeError, StopIteration, AttributeError):
            try:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise ValueError(f"benchmark file {path} is neither JSON nor JSONL ({exc.msg})") from None
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                continue
            source = f"{path.name}#{record.get('id', index)}"
            prompt = record.get("prompt") or record.get("Prompt")
            if isinstance(prompt, str) and prompt.strip():
                bench.prompts.append((source, normalise(prompt)))
            for key in ("gt_image", "image", "gt_img"):
                ref = record.get(key)
                if isinstance(ref, str) and ref:
                    image = (path.parent / ref) if not Path(ref).is_absolute() else Path(ref)
                    if image.is_file():
                        bench.image_hashes.append((source, dhash(image.read_bytes())))
    return bench


def dhash(data: bytes, size: int = 8) -> int:
    """A 64-bit difference hash: survives resizing and recompression, not a different picture."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("L").resize((size + 1, size))
        pixels = list(small.tobytes())
    bits = 0
    for row in range(size):
        for col in range(size):
            left, right = pixels[row * (size + 1) + col], pixels[row * (size + 1) + col + 1]
            bits = (bits << 1) | (left > right)
    return bits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _minhash(text: str, settings: GateSettings, n: int | None = None) -> MinHash:
    words = text.split()
    n = n or settings.shingle_words
    shingles = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    mh = MinHash(num_perm=settings.minhash_permutations, seed=1)
    for shingle in shingles:
        mh.update(shingle.encode("utf-8"))
    return mh


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def offline_gate(items: list[Item], settings: GateSettings, bench: Benchmark) -> dict[str, str | None]:
    """``{item id: drop reason or None}`` for the free checks (deterministic in the items' order)."""
    reasons: dict[str, str | None] = {}
    exact: dict[str, str] = {}
    lsh = MinHashLSH(threshold=settings.near_duplicate_jaccard, num_perm=settings.minhash_permutations)
    per_entity: Counter[str] = Counter()
    bench_lsh = MinHashLSH(threshold=settings.contamination_jaccard, num_perm=settings.minhash_permutations)
    bench_ngrams: dict[int, dict[tuple[str, ...], str]] = {n: {} for n in settings.contamination_ngrams}
    for index, (source, text) in enumerate(bench.prompts):
        bench_lsh.insert(f"{index}", _minhash(text, settings, settings.contamination_shingle_words))
        for n, table in bench_ngrams.items():
            for gram in _ngrams(text, n):
                table.setdefault(gram, source)
    for item in items:
        text = normalise(item.prompt)
        mh = _minhash(text, settings)
        reason: str | None = None
        if text in exact:
            reason = "duplicate"
        elif lsh.query(mh):
            reason = "near duplicate"
        elif per_entity[item.entity] >= settings.max_per_entity:
            reason = "entity cap"
        else:
            for n in sorted(bench_ngrams, reverse=True):
                if any(gram in bench_ngrams[n] for gram in _ngrams(text, n)):
                    reason = f"contaminated: {n}-gram overlap"
                    break
            if reason is None and bench_lsh.query(_minhash(text, settings, settings.contamination_shingle_words)):
                reason = "contaminated: near copy of a benchmark prompt"
        reasons[item.id] = reason
        if reason in (None, "entity cap"):
            exact.setdefault(text, item.id)
            lsh.insert(item.id, mh)
        if reason is None:
            per_entity[item.entity] += 1
    return reasons


PLAN_PROMPT = """You write prompts for an image generator. Without searching and without any tools, from \
memory only, write the one detailed prompt you would give the generator for this request, stating every \
fact it needs (appearance, text, colours, setting). Answer with the prompt only.

Request: {prompt}"""

PLAN_RUBRIC = """You check whether a prompt for an image generator, written from memory without search, \
already gets the facts right. Request: {prompt}

What a correct image must show:
{spec}

Prompt written from memory:
{plan}

Score 1 if the prompt states every listed fact correctly, 0.5 if it gets most of them, 0 if it misses or \
gets wrong what matters. Answer with one JSON object and nothing else: {{"score": <0|0.5|1>, "rationale": "..."}}"""


def _score(obj: dict[str, Any]) -> float:
    value = obj.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("score must be a number from 0 to 1")
    return float(value)


async def closed_book_plan(item: Item, teacher: ChatService) -> str:
    """The teacher's tool-less plan for ``item``."""
    reply = await teacher.chat_for(None, temperature=0.0).chat(
        [{"role": "user", "content": PLAN_PROMPT.format(prompt=item.prompt)}]
    )
    return reply.text.strip()


async def judge_plan(item: Item, plan: str, judge: Judge) -> float:
    """The judge's score of a closed-book plan against the item's spec (0..1)."""
    text = PLAN_RUBRIC.format(prompt=item.prompt, spec=item.spec.lines(), plan=plan or "(empty)")
    return await judge.judge_json([{"role": "user", "content": text}], _score, repair_hint="Keys: score, rationale.")
