"""uvicorn options shared by the tool server and the render server.

* Connections that send no request within ``idle_timeout_s`` are closed.
  uvicorn times out idle keep-alive connections only after a response, so a
  client that opens a socket and sends nothing would hold it forever.
* The access log masks query values (a token sent as ``?token=`` must not
  reach the log; see :func:`gen_searcher_core.redact.redact_query`).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any


def idle_closing_protocol() -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, with the keep-alive timer also running before the first request."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class IdleClosingH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # The first data_received cancels it, exactly as after a response.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    return IdleClosingH11Protocol


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging config with query values masked in the access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": "gen_searcher_core.redact.AccessLogQueryFilter"}
    config["handlers"]["access"].setdefault("filters", []).append("redact_query")
    return config


def uvicorn_options(idle_timeout_s: float = 5.0) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``."""
    return {
        "http": idle_closing_protocol(),
        "timeout_keep_alive": idle_timeout_s,
        "log_config": uvicorn_log_config(),
    }
