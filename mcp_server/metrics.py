"""Prometheus metrics for one server instance.

Every ``Services`` owns one ``Metrics`` with its own ``CollectorRegistry``
(nothing is registered globally, so two servers in one process, as in the
tests, never share counters). Collaborators record events through these calls:

* ``metrics.tool_call(tool, ok, seconds)``: recorded by the server around
  every tool call (tools need not do it themselves);
* ``metrics.cache_event(namespace, hit)``: the cache, once per lookup;
* ``metrics.backend_call(backend)``: a search backend, once per provider request;
* ``metrics.backend_error(backend)``: a search backend, once per failed request;
* ``metrics.fetcher_event(fetcher, event)``: a page fetcher (``refused``: a guard refusal inside the browser).
* ``metrics.image_store_event(event)``: the S3 image store (a read refused by verification, an object written back).

Label values are names chosen by the code (tool, namespace, backend), never
user input or secrets. ``render()`` returns the Prometheus text exposition.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

# Tool latencies span cached lookups (sub-millisecond) to renders (minutes).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Counters and histograms of one server; safe to call from any thread."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._tool_calls = Counter(
            "gen_searcher_tool_calls",
            "Tool calls by tool and outcome (ok or error).",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self._tool_latency = Histogram(
            "gen_searcher_tool_latency_seconds",
            "Tool call latency in seconds.",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._cache_events = Counter(
            "gen_searcher_cache_events",
            "Cache lookups by namespace and result (hit or miss).",
            ["namespace", "result"],
            registry=self.registry,
        )
        self._backend_calls = Counter(
            "gen_searcher_backend_calls",
            "Requests sent to a search provider, by backend.",
            ["backend"],
            registry=self.registry,
        )
        self._backend_errors = Counter(
            "gen_searcher_backend_errors",
            "Failed provider requests, by backend.",
            ["backend"],
            registry=self.registry,
        )
        self._fetcher_events = Counter(
            "gen_searcher_fetcher_events",
            "What the page fetchers did, by fetcher and event (rendered, refused, browser_launched, "
            "browser_restarted, browser_killed, renderer_crashed, page_timeout).",
            ["fetcher", "event"],
            registry=self.registry,
        )
        self._image_store_events = Counter(
            "gen_searcher_image_store_events",
            "What the S3 image store refused or repaired, by event (oversized, hash_mismatch, size_mismatch, "
            "bad_record, bad_source_entry, removed, restored, lost).",
            ["event"],
            registry=self.registry,
        )

        # Labelled children by label values: ``labels()`` costs a lock and a tuple build per call,
        # and these calls sit on the hot path of every cached search.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def tool_call(self, tool: str, ok: bool, seconds: float) -> None:
        self._child(self._tool_calls, tool, "ok" if ok else "error").inc()
        self._child(self._tool_latency, tool).observe(seconds)

    def cache_event(self, namespace: str, hit: bool) -> None:
        self._child(self._cache_events, namespace, "hit" if hit else "miss").inc()

    def backend_call(self, backend: str) -> None:
        self._child(self._backend_calls, backend).inc()

    def backend_error(self, backend: str) -> None:
        self._child(self._backend_errors, backend).inc()

    def fetcher_event(self, fetcher: str, event: str) -> None:
        self._child(self._fetcher_events, fetcher, event).inc()

    def image_store_event(self, event: str) -> None:
        self._child(self._image_store_events, event).inc()

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (e.g. ``gen_searcher_backend_calls_total``); 0 when absent."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def render(self) -> bytes:
        """The Prometheus text exposition of this instance's metrics."""
        return generate_latest(self.registry)
