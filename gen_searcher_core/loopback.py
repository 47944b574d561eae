"""Small services on 127.0.0.1 for the commands that bring their own (``gen-searcher demo``, ``train smoke``).

An ASGI app served by uvicorn on a background thread, a free port, and this
installation's ``gen-searcher`` command (to start the tool server as a
subprocess, the way an MCP client does).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any, *, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port from a uvicorn thread; yields its base URL (no trailing /)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"a loopback service did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def gen_searcher_command() -> list[str]:
    """This installation's ``gen-searcher`` command (the script beside this Python, else the one on PATH)."""
    script = Path(sys.executable).with_name("gen-searcher")
    return [str(script)] if script.exists() else [shutil.which("gen-searcher") or "gen-searcher"]


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], timeout_s: float) -> str | None:
    """Poll ``base``/healthz until it answers 200; None then, else why not (the process exited, or the time ran out).

    Blocking: call it from a thread or a synchronous command, never from async code.
    """
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            return f"exited {process.returncode}"
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            return f"did not answer /healthz within {timeout_s:.0f} s"
        time.sleep(0.2)
