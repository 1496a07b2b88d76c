"""Every Prometheus metric ecomstream exports, in one place.

Why one module: names, units and label sets form a contract with the
dashboards and alert rules in ``grafana/`` and ``prometheus/``. Labels carry
topics, reasons, agents and labels of bounded cardinality, never user ids or
review text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

EVENTS_CONSUMED = Counter(
    "ecomstream_events_consumed_total",
    "Input messages read from a topic, valid or not.",
    ["topic"],
    registry=REGISTRY,
)
EVENTS_PROCESSED = Counter(
    "ecomstream_events_processed_total",
    "Valid input events handed to the processing logic.",
    ["topic"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "ecomstream_dead_letters_total",
    "Input messages refused and written to dead-letters, by reason.",
    ["topic", "reason"],
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "ecomstream_processing_seconds",
    "Wall time an agent spent on one batch.",
    ["agent"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "ecomstream_batch_size",
    "Events per batch taken by an agent.",
    ["agent"],
    buckets=_BATCH_BUCKETS,
    registry=REGISTRY,
)
EVENT_TIME_LAG = Gauge(
    "ecomstream_event_time_lag_seconds",
    "Wall clock minus the event time of the newest event an agent processed.",
    ["agent"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The text exposition format of every metric above."""
    return generate_latest(REGISTRY)
