"""Stage 4: the ground-truth image, drawn from the prompt and its spec, then checked.

The image comes from the ``render`` tool of an MCP server (whatever renderer it is
configured with: a hosted generator through the ``openai`` images backend, the render
server, or diffusers), through the GRPO reward's own :func:`~verl_recipes.reward.render_answer`.
It is drawn text-only, so it is no copy of a found photo; it is then rejected when it is a
near copy of an image the rollouts retrieved (the task would become "find that photo"), when it
is near-identical to a benchmark image (contamination), or when the judge finds it does not show
the prompt and spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.judge import Judge
from synth.gate import Benchmark, _score, dhash, hamming
from synth.items import Item
from verl_recipes.reward import RewardSettings, render_answer

TRUTH_RUBRIC = """You check a reference image made for a knowledge-intensive request. Request: {prompt}

What a correct image must show:
{spec}

Score 1 if the image shows the request and every listed fact correctly, 0.5 if mostly, 0 if it misses \
what matters. Answer with one JSON object and nothing else: {{"score": <0|0.5|1>, "rationale": "..."}}"""


def truth_prompt(item: Item) -> str:
    """What the ground-truth generator is asked to draw: the request plus the facts it must show."""
    facts = "; ".join(item.spec.facts + [f'the text "{t}"' for t in item.spec.text])
    return f"{item.prompt} It must show: {facts}." if facts else item.prompt


async def draw(item: Item, settings: RewardSettings) -> bytes:
    image, _ = await render_answer(settings, truth_prompt(item), [])
    return image


def copy_or_contamination(image: bytes, reference_files: list[Path], bench: Benchmark, max_distance: int) -> str | None:
    """The drop reason when ``image`` is a near copy of a retrieved reference or of a benchmark image."""
    mine = dhash(image)
    for path in reference_files:
        if path.is_file() and hamming(mine, dhash(path.read_bytes())) <= max_distance:
            return "ground truth is a near copy of a retrieved reference"
    for _, theirs in bench.image_hashes:
        if hamming(mine, theirs) <= max_distance:
            return "contaminated: ground truth near-identical to a benchmark image"
    return None


async def judge_truth(item: Item, image: bytes, judge: Judge) -> float:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": TRUTH_RUBRIC.format(prompt=item.prompt, spec=item.spec.lines())},
        {"type": "image_url", "image_url": {"url": await judge.image(image)}},
    ]
    return await judge.judge_json([{"role": "user", "content": content}], _score, repair_hint="Keys: score.")
