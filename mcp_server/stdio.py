"""The stdio transport, with every line screened so that every request gets an answer.

The SDK's ``stdio_server`` drops a line it cannot read as a JSON-RPC message
(a request whose id is an object, a float, ``null`` or a boolean, a batch,
bytes that are not JSON): the client waits forever. Here each line is screened
first (:func:`mcp_server.envelope.screen`); a refused line is answered on
stdout with ``-32600`` (or ``-32700``), exactly as HTTP answers it, and only
readable messages reach the SDK.

Like the SDK, the server reads the protocol from a private duplicate of fd 0
and points fd 0 at the null device while it runs, so nothing else in the
process (or a child) can consume protocol bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import mcp_types
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from mcp_server.envelope import screen

__all__ = ["run_screened_stdio"]


class _ScreenedLines:
    """The lines of stdin that the SDK can read; the others are answered through ``refusals``."""

    def __init__(self, source: anyio.AsyncFile[str], refusals: MemoryObjectSendStream[dict[str, Any]]) -> None:
        self._source = source
        self._refusals = refusals

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async with self._refusals:
            async for line in self._source:
                if not line.strip():
                    continue
                answer = screen(line, answer_parse_errors=True)
                if answer is None:
                    yield line
                else:
                    await self._refusals.send(answer)


@contextlib.contextmanager
def _claimed_stdin() -> Iterator[io.TextIOWrapper]:
    """A text stream over a private duplicate of fd 0, with fd 0 on the null device meanwhile."""
    try:
        private = os.dup(0)
    except OSError:  # no fd 0 to claim (an embedding host): read sys.stdin as it is
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        return
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # closefd=False: a worker thread may still block on the descriptor after the server ends.
    stream = io.TextIOWrapper(os.fdopen(private, "rb", closefd=False), encoding="utf-8", errors="replace")
    try:
        yield stream
    finally:
        with contextlib.suppress(OSError):
            os.dup2(private, 0)


async def run_screened_stdio(server: MCPServer) -> None:
    """Serve ``server`` over this process's stdin and stdout until stdin closes."""
    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs, too
    refusals_in, refusals_out = anyio.create_memory_object_stream[dict[str, Any]](16)
    with _claimed_stdin() as raw:
        lines = _ScreenedLines(anyio.wrap_file(raw), refusals_in)
        async with stdio_server(stdin=lines) as (read_stream, write_stream):  # type: ignore[arg-type]

            async def answer_refusals() -> None:
                async with refusals_out:
                    async for answer in refusals_out:
                        message = mcp_types.JSONRPCError.model_validate(answer)
                        await write_stream.send(SessionMessage(message))

            async with anyio.create_task_group() as tg:
                tg.start_soon(answer_refusals)
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
                tg.cancel_scope.cancel()
