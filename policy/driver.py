"""The inference driver: runs an :class:`~policy.episode.Episode` with a chat model and MCP tools.

It records a trace of everything that happened (every message, model reply,
tool call and result, with timings) and never lets a tool error escape: tool
errors go to the model; a failing model server or a lost MCP session end the
episode with the ``error`` termination.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gen_searcher_core.episode_record import (
    EpisodeRecord,
    ModelStep,
    Step,
    ToolCallRecord,
    ToolResultRecord,
    ToolsStep,
)
from policy.chat import ChatModel, ChatModelError
from policy.concurrency import gather_ordered
from policy.episode import Continue, Episode, EpisodeConfig, EpisodeResult, Finished, RunTools, ToolResult
from policy.mcp_client import McpConnectionError
from policy.protocol import ToolCall

ProgressFn = Callable[[str, dict[str, Any]], None]


class ToolRunner(Protocol):
    async def call(self, call: ToolCall) -> ToolResult: ...


@dataclass
class EpisodeRun:
    episode: Episode
    result: EpisodeResult
    steps: list[Step]
    wall_s: float
    model_name: str | None = None

    def record(self, *, include_image_data: bool = False) -> EpisodeRecord:
        """The run as an episode record with its turns. Image bytes are left out unless asked for (ids stay)."""
        return self.episode.record(
            model=self.model_name,
            wall_s=round(self.wall_s, 4),
            steps=self.steps,
            include_image_data=include_image_data,
        )

    def trace(self, *, include_image_data: bool = False) -> dict[str, Any]:
        """The record as JSON (what ``trace.json`` holds); unset fields are left out."""
        return self.record(include_image_data=include_image_data).model_dump(mode="json", exclude_none=True)


async def run_episode(
    prompt: str,
    model: ChatModel,
    tools: ToolRunner,
    config: EpisodeConfig | None = None,
    *,
    progress: ProgressFn | None = None,
    model_name: str | None = None,
) -> EpisodeRun:
    """Run one episode to its end and return the result with its trace."""
    episode = Episode(prompt, config)
    steps: list[Step] = []
    notify = progress or (lambda kind, data: None)
    started = time.perf_counter()
    while True:
        call_no = episode.model_calls + 1
        notify("model_start", {"call": call_no, "forced": episode.forced})
        t0 = time.perf_counter()
        try:
            reply = await model.chat(episode.messages)
        except ChatModelError as exc:
            steps.append(ModelStep(call=call_no, elapsed_s=_since(t0), error=str(exc)))
            action: Any = episode.fail(str(exc))
        else:
            action = episode.on_model_output(reply.text, reply.truncated)
            step = ModelStep.model_validate(
                {
                    "call": call_no,
                    "elapsed_s": _since(t0),
                    "finish_reason": reply.finish_reason,
                    "truncated": reply.truncated,
                    "usage": reply.usage,
                    "text": reply.text,
                    **{k: v for k, v in episode.events[-1].items() if k not in ("call", "truncated")},
                }
            )
            steps.append(step)
            notify("model_end", step.model_dump(mode="json", exclude_none=True))
        if isinstance(action, Finished):
            break
        if isinstance(action, RunTools):
            try:
                results = await _run_tools(action.calls, tools, episode.config.parallel_tool_calls, steps, notify)
            except McpConnectionError as exc:
                action = episode.fail(str(exc))
                break
            episode.on_tool_results(results)
        elif isinstance(action, Continue):
            notify("continue", {"reason": action.reason})
    run = EpisodeRun(
        episode=episode,
        result=action.result,
        steps=steps,
        wall_s=time.perf_counter() - started,
        model_name=model_name,
    )
    notify("finished", run.result.to_dict())
    return run


async def _run_tools(
    calls: Sequence[ToolCall],
    tools: ToolRunner,
    parallel: bool,
    steps: list[Step],
    notify: ProgressFn,
) -> list[ToolResult]:
    batch_start = time.perf_counter()
    concurrent = parallel and len(calls) > 1

    async def one(call: ToolCall) -> tuple[ToolResult, ToolCallRecord]:
        notify("tool_start", {"name": call.name, "arguments": call.arguments})
        t0 = time.perf_counter()
        result = await tools.call(call)
        record = ToolCallRecord(
            name=call.name,
            arguments=call.arguments,
            started_s=round(t0 - batch_start, 4),
            elapsed_s=_since(t0),
            result=ToolResultRecord.model_validate(result.to_dict()),
        )
        notify("tool_end", record.model_dump(mode="json", exclude_none=True))
        return result, record

    done = await gather_ordered([functools.partial(one, call) for call in calls], concurrent=concurrent)
    steps.append(ToolsStep(parallel=concurrent, elapsed_s=_since(batch_start), calls=tuple(r for _, r in done)))
    return [result for result, _ in done]


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 4)
