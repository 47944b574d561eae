"""The tool server's commands: ``serve``, ``tools`` and ``call``.

They register on the ``gen-searcher`` root through the ``gen_searcher.commands``
entry points (see :mod:`gen_searcher_core.commands`). Heavy imports stay inside
the command functions so that ``gen-searcher --help`` stays fast.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $GEN_SEARCHER_CONFIG)", show_default=False),
]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="MCP endpoint of a running server (http://host:port/mcp); in-process when absent"),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="GEN_SEARCHER_TOKEN", help="bearer token for --url", show_default=False),
]


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


def _settings(config: Path | None, **server: Any) -> Any:
    from mcp_server.settings import load_settings

    try:
        settings = load_settings(config)
    except (FileNotFoundError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        typer.echo(f"error: bad settings: {exc}", err=True)
        raise typer.Exit(2) from None
    updates = {key: value for key, value in server.items() if value is not None}
    if updates:  # command-line flags beat the file and the environment
        settings.server = settings.server.model_copy(update=updates)
    return settings


def _exit_on_setup_error(run: Any, *args: Any) -> Any:
    """Run ``run(*args)``; a misconfigured search backend or an unreachable ``--url`` ends the
    command with one clear line and exit status 2 instead of a traceback."""
    from gen_searcher_core.errors import ConfigError, first_leaf
    from mcp_server.launcher import RemoteServerError
    from search_tools.backends.base import SearchBackendError

    try:
        return run(*args)
    except (SearchBackendError, RemoteServerError) as exc:
        if isinstance(exc, SearchBackendError) and exc.kind != "config":
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a ConfigError (e.g. an unusable image store), possibly inside a task group
        leaf = first_leaf(exc)
        if not isinstance(leaf, ConfigError):
            raise
        typer.echo(f"error: {leaf}", err=True)
        raise typer.Exit(2) from None


def serve(
    transport: Annotated[
        Transport, typer.Option(help="stdio for a launching MCP client, http for a network server")
    ] = (Transport.http),
    host: Annotated[str | None, typer.Option(help="bind address [default: 127.0.0.1]", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(help="port [default: 8000]", show_default=False)] = None,
    config: ConfigOption = None,
    stateless: Annotated[
        bool | None,
        typer.Option(
            "--stateless/--stateful", help="streamable HTTP without sessions (RL workers)", show_default=False
        ),
    ] = None,
) -> None:
    """Run the MCP tool server (streamable HTTP at /mcp, SSE at /sse, /healthz, /metrics)."""
    settings = _settings(config, host=host, port=port, stateless=stateless)
    from mcp_server.launcher import serve_http, serve_stdio

    _exit_on_setup_error(serve_stdio if transport is Transport.stdio else serve_http, settings)


def tools(url: UrlOption = None, config: ConfigOption = None, token: TokenOption = None) -> None:
    """List the tools and their input schemas as JSON."""
    from mcp_server.launcher import list_tools_json, unavailable_tools

    settings = _settings(config)
    listing = _exit_on_setup_error(anyio.run, list_tools_json, settings, url, token)
    typer.echo(json.dumps(listing, indent=2, ensure_ascii=False))
    if url is None:
        for name, reason in unavailable_tools(settings).items():
            typer.echo(f"note: tool {name!r} is not offered: {reason}", err=True)


_IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def _images_out(result: dict[str, Any], tool: str, save: Path | None, show_data: bool) -> list[Path]:
    """Replace each image block's base64 ``data`` by the file it was saved to (``save``) or a short note.

    A thumbnail is tens of kilobytes of base64: on a terminal it is noise, in a file it is a picture.
    Returns the files written.
    """
    import base64

    written: list[Path] = []
    for n, block in enumerate(result.get("content", []), start=1):
        if block.get("type") != "image" or not isinstance(block.get("data"), str):
            continue
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            path = save / f"{tool}-{n:02d}.{_IMAGE_EXTENSIONS.get(block.get('mimeType', ''), 'bin')}"
            path.write_bytes(base64.b64decode(block["data"]))
            written.append(path)
            block["data"] = None
            block["saved"] = str(path)
        elif not show_data:
            block["data"] = f"<{len(block['data'])} characters of base64: --save DIR writes it, --show-data prints it>"
    return written


def call(
    tool: Annotated[str, typer.Argument(help="tool name, e.g. search")],
    arguments: Annotated[str, typer.Argument(help='JSON object, e.g. \'{"queries": ["eiffel tower"]}\'')] = "{}",
    url: UrlOption = None,
    config: ConfigOption = None,
    token: TokenOption = None,
    save: Annotated[
        Path | None,
        typer.Option("--save", help="write the result's images into this folder (their paths replace the data)"),
    ] = None,
    show_data: Annotated[
        bool, typer.Option("--show-data", help="print images as base64 (by default their data is left out)")
    ] = False,
) -> None:
    """Call one tool and print its result as JSON; exits 1 when the tool reports an error."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: arguments are not valid JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(parsed, dict):
        typer.echo(f"error: arguments must be a JSON object, got {type(parsed).__name__}", err=True)
        raise typer.Exit(2)
    from mcp_server.launcher import call_tool_json

    settings = _settings(config)
    result = _exit_on_setup_error(anyio.run, call_tool_json, settings, tool, parsed, url, token)
    written = _images_out(result, tool, save, show_data)
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    for path in written:
        typer.echo(f"saved {path}", err=True)
    if result.get("isError"):
        raise typer.Exit(1)


def register_serve(app: typer.Typer) -> None:
    app.command("serve")(serve)


def register_tools(app: typer.Typer) -> None:
    app.command("tools")(tools)


def register_call(app: typer.Typer) -> None:
    app.command("call")(call)


def server_app() -> typer.Typer:
    """Only the tool server's commands (``python -m mcp_server``)."""
    app = typer.Typer(name="gen-searcher", no_args_is_help=True, pretty_exceptions_show_locals=False)
    for register in (register_serve, register_tools, register_call):
        register(app)
    return app
