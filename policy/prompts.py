"""The policy's system prompt, tool descriptions and the fixed user-turn wordings.

The wording here is this project's own. Users who want another system prompt
pass ``--system-prompt-file`` (or ``EpisodeConfig.system_prompt``); the tool
block is appended to whatever system prompt is used so the model always sees the
tools it may call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """One tool in the OpenAI function format, with a flat JSON schema (plain types only)."""
    parameters = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


# Matching the tool server's arguments.
TOOL_SPECS: tuple[dict[str, Any], ...] = (
    _function(
        "search",
        "Web text search. Use it to establish facts: who or what the subject is, what it looks like, "
        "when and where it appeared. Several different queries may be sent at once.",
        {
            "queries": {"type": "array", "items": {"type": "string"}, "description": "1 to 5 distinct search queries."},
            "top_k": {"type": "integer", "description": "Results per query, 1 to 10 (default 5)."},
        },
        ["queries"],
    ),
    _function(
        "image_search",
        "Image search. Returns candidate photos, each shown to you with an id IMG_###, a title and "
        "its source page. Use one call per distinct visual subject.",
        {
            "query": {"type": "string", "description": "What the picture should show."},
            "top_k": {"type": "integer", "description": "Number of images, 1 to 10 (default 5)."},
        },
        ["query"],
    ),
    _function(
        "browse",
        "Read one web page and report what it says about a goal. Use it on a promising search hit "
        "when the snippet is not enough.",
        {
            "url": {"type": "string", "description": "The page address (http or https)."},
            "goal": {"type": "string", "description": "What you want to learn from the page."},
            "offset": {
                "type": "integer",
                "description": "Where to continue a long page (the offset a previous browse result gave).",
            },
        },
        ["url", "goal"],
    ),
)

TOOL_NAMES: frozenset[str] = frozenset(spec["function"]["name"] for spec in TOOL_SPECS)

SYSTEM_PROMPT = """\
You prepare image generation requests. A user asks for a picture; the image generator knows only what \
it saw in training and may not know the people, places, objects or events involved, or how they look \
today. Your job is to find out with the tools below, collect reference photos, and hand the generator a \
precise prompt plus the best reference images.

How to work:
- Pin down every named subject first with text search: confirm who or what it is, its current \
appearance and the details the picture needs (dates, colours, uniforms, landmarks, text on signs).
- Then look for photos: one image search per distinct visual subject, with a query naming that subject \
precisely. Do not search for a scene that combines several subjects; search for each subject.
- Never send a query you have already sent. If a search did not help, change the wording or the angle.
- Read a page with browse only when the snippets leave a question open.
- Choose references strictly: each must show something the generator needs and cannot be described as \
well in words; no two references may show the same subject in nearly the same way. One to five \
references; the first three matter most, so put the most important ones among the lowest ids you keep.
- Stop searching as soon as you know enough; you have a limited number of turns.

Each of your turns: first think inside <think>…</think>, then do exactly one of:
- call a tool: <tool_call>{"name": "<tool name>", "arguments": {…}}</tool_call>
- finish: <answer>{"gen_prompt": "…", "reference_images": [{"img_id": "IMG_###", "note": "what it shows \
and why"}]}</answer>

Tool results come back inside <tool_response>…</tool_response>. Images found by image_search are shown \
to you with ids IMG_001, IMG_002, …; refer to images only by these ids.

The answer: gen_prompt is a self-contained description of the picture to draw, in plain English, with \
the facts you found. It names references by position in your list: "the first reference image", "the \
second reference image", and never by IMG id. reference_images lists 1 to 5 images in ascending id \
order, each with a short note."""

FORCED_FINAL_NOTICE = (
    "You have no tool calls left. Tool calls are now forbidden: do not write <tool_call>. "
    "Think briefly, then give your final <answer> using the images you have already seen."
)

TOO_LONG_NOTICE = (
    "Your previous response was too long and was cut off before it finished, so it had no effect. "
    "Keep your thinking short and end the turn with a <tool_call> or an <answer>."
)


def tools_block(specs: Iterable[dict[str, Any]] = TOOL_SPECS) -> str:
    """The tool list appended to the system prompt (one JSON schema per line)."""
    lines = "\n".join(json.dumps(spec, ensure_ascii=False) for spec in specs)
    return f"# Tools\n\nYou may call these tools:\n<tools>\n{lines}\n</tools>"


def build_system_prompt(base: str | None = None, specs: Iterable[dict[str, Any]] = TOOL_SPECS) -> str:
    return f"{(base if base is not None else SYSTEM_PROMPT).rstrip()}\n\n{tools_block(specs)}"


def corrective_message(error: str, calls_left: int) -> str:
    tail = f"\nYou have {calls_left} turn(s) left. Try again." if calls_left > 0 else ""
    return f"Format error: {error}{tail}"
