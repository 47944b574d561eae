"""Options shared by the ``gen-searcher bench`` commands, bundled into small dataclasses.

Each bundle (:class:`GenerationOptions`, :class:`JudgeOptions`, :class:`RunOptions`)
declares its typer options once, as annotated fields. A command asks for a
bundle with a parameter typed by it and :func:`bundled` turns the fields into
the command's options, then hands the command the built dataclass::

    @bench_app.command("knowgen")
    @bundled
    def knowgen(data: DataOpt, gen: GenerationOptions, judge: JudgeOptions, run: RunOptions) -> None: ...
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer


class FailureProtocol(StrEnum):
    strict = "strict"
    published = "published"


class WiseProtocol(StrEnum):
    legacy = "legacy"
    verified = "verified"


class Stage(StrEnum):
    all = "all"
    generate = "generate"
    judge = "judge"
    report = "report"

    @property
    def generates(self) -> bool:
        return self in (Stage.all, Stage.generate)

    @property
    def judges(self) -> bool:
        return self in (Stage.all, Stage.judge)

    @property
    def reports(self) -> bool:
        return self in (Stage.all, Stage.report)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


# typer needs ... | None rather than X | None inside Annotated.
OutOpt = Annotated[Path, typer.Option("--out", help="Run folder (created; a rerun resumes it).")]
ImagesRootOpt = Annotated[
    Path | None,
    typer.Option("--images-root", help="Root of relative gt_image paths (default: the data file's folder)."),
]
FailureProtocolOpt = Annotated[
    FailureProtocol,
    typer.Option("--protocol", help="strict: failed generations score 0; published: they are dropped."),
]


@dataclasses.dataclass(frozen=True)
class GenerationOptions:
    """How images are made: the policy, the tool server and the renderer."""

    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="none: render the prompt as is (no search); baseline: the no-model search baseline; "
            "or an OpenAI-compatible policy model URL (e.g. http://localhost:8001/v1).",
        ),
    ] = "none"
    policy_model: Annotated[str | None, typer.Option("--policy-model", help="Model name on the policy server.")] = None
    mcp_url: Annotated[
        str | None,
        typer.Option(
            "--mcp-url", help="Tool server (streamable HTTP /mcp URL); a local one over stdio (--config) when omitted."
        ),
    ] = None
    render: Annotated[
        str | None,
        typer.Option("--render", help="Render backend: diffusers | http | openai (default: the settings' backend)."),
    ] = None
    render_url: Annotated[str | None, typer.Option("--render-url", help="Render server or images API URL.")] = None
    render_model: Annotated[str | None, typer.Option("--render-model", help="Qwen-Image model id or folder.")] = None
    render_edit_model: Annotated[
        str | None, typer.Option("--render-edit-model", help="Qwen-Image-Edit model id or folder.")
    ] = None
    width: Annotated[int, typer.Option("--width", help="Image width.")] = 1024
    height: Annotated[int, typer.Option("--height", help="Image height.")] = 1024
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (default: the pipeline's).")] = None
    seed: Annotated[int, typer.Option("--seed", help="Base seed; each item's seed derives from it and its id.")] = 42
    concurrency: Annotated[int, typer.Option("--concurrency", help="Items generated at the same time.")] = 2
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings (render, tool server, judge).")] = None


@dataclasses.dataclass(frozen=True)
class JudgeOptions:
    """Which judge scores the images."""

    judge_url: Annotated[
        str | None,
        typer.Option("--judge-url", help="OpenAI-compatible judge API root (default $GEN_SEARCHER_JUDGE_BASE_URL)."),
    ] = None
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="Judge model (default $GEN_SEARCHER_JUDGE_MODEL or gpt-4.1)."),
    ] = None
    judge_concurrency: Annotated[int, typer.Option("--judge-concurrency", help="Judge requests in flight.")] = 8


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Which part of the run to do now."""

    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N items.")] = None
    stage: Annotated[Stage, typer.Option("--stage", help="Run only this stage (all = generate, judge, report).")] = (
        Stage.all
    )
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run failed items again instead of skipping them.")
    ] = False
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Live progress bars on stderr.")] = True


def bundled(command: Callable[..., Any]) -> Callable[..., Any]:
    """Expand each parameter typed by an options dataclass into that dataclass's options (see module doc)."""
    hints = get_type_hints(command, include_extras=True)
    bundles: dict[str, type] = {}
    params: list[inspect.Parameter] = []
    for param in inspect.signature(command).parameters.values():
        hint = hints.get(param.name, param.annotation)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            bundles[param.name] = hint
            field_hints = get_type_hints(hint, include_extras=True)
            params += [
                inspect.Parameter(
                    f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=field_hints[f.name]
                )
                for f in dataclasses.fields(hint)
            ]
        else:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hint))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: an option name appears twice")

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        for name, cls in bundles.items():
            kwargs[name] = cls(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls)})
        return command(**kwargs)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
