"""Prometheus metrics, defined once for the web layer, the learner and the cache.

Only ``prometheus_client`` here, so any layer may import it without pulling in
another's dependencies.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "sunrank_requests_total", "HTTP requests by GraphQL operation and status",
    ["operation", "status"],
)  # fmt: skip
REQUEST_SECONDS = Histogram(
    "sunrank_request_seconds", "Request latency by GraphQL operation", ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
LEARNER_UPDATE_SECONDS = Histogram(
    "sunrank_learner_update_seconds", "Time to apply events to the learner (worker thread)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
)  # fmt: skip
EVENTS_APPLIED = Counter("sunrank_learner_events_applied_total", "Events applied to the learner")
EVENTS_BEHIND = Gauge(
    "sunrank_learner_events_behind", "Events in the log not yet applied (at the last scrape)"
)
REFIT_SECONDS = Histogram(
    "sunrank_learner_refit_seconds", "Duration of background full refits",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)  # fmt: skip
CACHE_REQUESTS = Counter("sunrank_cache_requests_total", "Cache lookups", ["result"])
