"""Stage 3: k teacher rollouts per prompt through the policy's own driver, against an MCP tool server.

Each rollout is journaled on its own (a crash loses only rollouts in flight). The
stored record is the episode's trace with its images written to the run's
``images/`` folder (content-addressed) and referenced by path, plus the facts the
``select`` gates read, so selecting again never reads a model or a tool.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

import anyio

from gen_searcher_core.episode_record import Termination
from policy.driver import EpisodeRun, run_episode
from policy.episode import EpisodeConfig
from policy.mcp_tools import McpTools
from policy.protocol import cut_hallucinated_response
from synth.items import Item
from synth.services import ChatService

#: Terminations that mean the service failed, not the teacher: not journaled, a rerun tries again.
TRANSIENT = frozenset({str(Termination.ERROR)})


def episode_record(run: EpisodeRun) -> dict[str, Any]:
    """The episode as stored per rollout: its :class:`EpisodeRecord` dump, image bytes included (moved out next)."""
    return run.record(include_image_data=True).model_dump(mode="json")


def _write_image(data_b64: str, mime_type: str | None, images: Path) -> str:
    data = base64.b64decode(data_b64)
    ext = "png" if mime_type == "image/png" else "jpg"
    name = f"{hashlib.sha256(data).hexdigest()[:24]}.{ext}"
    target = images / name
    if not target.exists():
        images.mkdir(parents=True, exist_ok=True)
        # rollouts running at once may save the same image: each writes its own file, the renames agree
        tmp = target.with_name(f"{name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return f"images/{name}"


def save_images(record: dict[str, Any], images: Path) -> list[str]:
    """Write every image the model saw to ``images/<sha256>.<ext>``; returns their run-relative paths in
    message order (what the SFT export's ``<image>`` placeholders follow). The record keeps ids, not bytes."""
    paths: list[str] = []
    for message in record.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image":
                    paths.append(_write_image(part["data"], part.get("mime_type"), images) if part.get("data") else "")
                    part["data"] = None
    for step in record.get("steps") or []:
        for call in step.get("calls") or []:
            for image in call.get("result", {}).get("images") or []:
                image["data"] = None
    return paths


def summarise(record: dict[str, Any], image_paths: list[str]) -> dict[str, Any]:
    """What ``select`` and ``judge`` read from a rollout (computed once, journaled with it)."""
    steps = record.get("steps") or []
    answer = record.get("answer") or {}
    tool_names = [c["name"] for s in steps if s.get("type") == "tools" for c in s.get("calls", [])]
    texts = [str(s.get("text") or "") for s in steps if s.get("type") == "model"]
    by_store: dict[str, str] = {}
    chars = 0
    parts = [p for m in record.get("messages") or [] if isinstance(m.get("content"), list) for p in m["content"]]
    images = [p for p in parts if p.get("type") == "image"]
    for part, path in zip(images, image_paths, strict=False):
        if part.get("store_id") and path:
            by_store.setdefault(part["store_id"], path)
    for message in record.get("messages") or []:
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else sum(len(p.get("text") or "") for p in content)
    references = answer.get("references") or []
    return {
        "termination": record.get("termination"),
        "valid": bool(answer.get("gen_prompt")),
        "gen_prompt": answer.get("gen_prompt"),
        "references": len(references),
        "reference_paths": [by_store[r["store_id"]] for r in references if r.get("store_id") in by_store],
        "tool_calls": len(tool_names),
        "image_searches": tool_names.count("image_search"),
        "hallucinated": any(cut_hallucinated_response(t) != t for t in texts),
        "format_errors": record.get("format_errors", 0),
        "tokens_est": chars // 4 + len(images) * 256,
        "detail": record.get("detail"),
    }


async def run_rollout(
    item: Item, index: int, seed: int, teacher: ChatService, tools: McpTools, images: Path
) -> dict[str, Any]:
    """One teacher rollout; returns ``{"record": …, "summary": …}`` (images written under ``images``)."""
    model = teacher.chat_for(seed)
    run = await run_episode(item.prompt, model, tools, EpisodeConfig(), model_name=teacher.model)
    record = episode_record(run)
    paths = await anyio.to_thread.run_sync(save_images, record, images)
    summary = summarise(record, paths)
    teacher.costs.add("tool_calls", summary["tool_calls"])
    return {"rollout": index, "record": record, "image_paths": paths, "summary": summary}
