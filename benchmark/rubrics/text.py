"""The text rubric of the training reward: is the grounded prompt sufficient?

The policy's answer (``gen_prompt`` plus the notes of its reference images) is
judged against the ground-truth image: would a capable generator, given this
text and those references, be able to draw the ground truth? Score 0, 0.25,
0.5, 0.75 or 1. The judge answers ``{"score": x, "rationale": "..."}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmark.judge import ImageInput, Judge, user_content
from benchmark.rubrics.values import as_score, rationale, require_keys

ALLOWED = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class TextJudgement:
    score: float
    rationale: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> TextJudgement:
        require_keys(obj, ("score",))
        return cls(score=as_score(obj["score"], "score", ALLOWED), rationale=rationale(obj))


SYSTEM_PROMPT = """You review the plan a research agent wrote for an image generator.
The agent searched the web for the facts behind a request and then wrote a generation prompt
plus short notes describing the reference images it will hand to the generator. You also see the
GROUND-TRUTH image: what a correct result looks like.

Decide how sufficient the plan is for producing an image that matches the ground truth in the
facts that matter (identities and looks of specific people, objects, places, characters, logos,
any required text, dates, counts, colours, layout). Judge the information in the plan, not its
prose. Wrong facts count against it more than missing ones.

Score with one of 0, 0.25, 0.5, 0.75, 1:
1 = every key fact needed is present and correct; 0.75 = nearly complete, one minor gap;
0.5 = the main subject is right but important details are missing or vague; 0.25 = mostly
generic or partly wrong; 0 = wrong subject, wrong facts or empty.
Answer with one JSON object and nothing else: {"score": <number>, "rationale": "<one or two sentences>"}"""


def format_plan(gen_prompt: str, reference_notes: Sequence[str]) -> str:
    lines = [f"Generation prompt:\n{gen_prompt.strip()}"]
    if reference_notes:
        lines.append("Reference images (in order):")
        lines.extend(f"{i}. {note.strip()}" for i, note in enumerate(reference_notes, 1))
    else:
        lines.append("Reference images: none")
    return "\n".join(lines)


async def judge_text(
    judge: Judge,
    *,
    gen_prompt: str,
    reference_notes: Sequence[str],
    gt_image: ImageInput,
    original_prompt: str | None = None,
) -> TextJudgement:
    """Score the plan (``gen_prompt`` + ``reference_notes``) against ``gt_image``; raises ``JudgeError``."""
    truth = await judge.image(gt_image)
    text = ""
    if original_prompt:
        text += f"Original request:\n{original_prompt.strip()}\n\n"
    text += format_plan(gen_prompt, reference_notes)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_content(text, [("GROUND-TRUTH image:", truth)])},
    ]
    return await judge.judge_json(messages, TextJudgement.from_dict, repair_hint="Keys: score, rationale.")
