"""Every Prometheus metric ecomstream exports, in one place.

Why one module: names, units and label sets form a contract with the
dashboards and alert rules in ``grafana/`` and ``prometheus/``. Labels carry
topics, reasons, agents and labels of bounded cardinality, never user ids or
review text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

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
FULL_GC_SECONDS = Histogram(
    "ecomstream_full_gc_seconds",
    "Pause of one full garbage collection (run when idle or overdue, see processing.collector).",
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

CONSUMER_LAG = Gauge(
    "ecomstream_consumer_lag_messages",
    "Messages between the committed offset and the end of a partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
CHANGELOG_RECORDS = Counter(
    "ecomstream_changelog_records_total",
    "Table changes written to changelogs, each changed key once per commit.",
    ["table"],
    registry=REGISTRY,
)
TABLE_KEYS = Gauge(
    "ecomstream_table_keys",
    "Keys held by a table on this worker.",
    ["table"],
    registry=REGISTRY,
)

# Scoring (review sentiment through Triton or in-process).
SCORER_REQUEST_SECONDS = Histogram(
    "ecomstream_scorer_request_seconds",
    "Latency of one scoring request (one micro-batch).",
    ["scorer"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SCORER_BATCH_SIZE = Histogram(
    "ecomstream_scorer_batch_size",
    "Reviews per scoring request.",
    ["scorer"],
    buckets=_BATCH_BUCKETS,
    registry=REGISTRY,
)
SCORER_ERRORS = Counter(
    "ecomstream_scorer_errors_total",
    "Failed scoring requests, by kind (unavailable, timeout, invalid).",
    ["scorer", "kind"],
    registry=REGISTRY,
)
SCORER_CIRCUIT_OPEN = Gauge(
    "ecomstream_scorer_circuit_open",
    "1 while the circuit to the scorer is open and scoring waits.",
    ["scorer"],
    registry=REGISTRY,
)
REVIEWS_SCORED = Counter(
    "ecomstream_reviews_scored_total",
    "Reviews scored, by predicted label.",
    ["label"],
    registry=REGISTRY,
)

# Business outputs.
SENTIMENT_ALERTS = Counter(
    "ecomstream_sentiment_alerts_total",
    "Sentiment alerts emitted, by state (firing, resolved) and severity.",
    ["state", "severity"],
    registry=REGISTRY,
)
SENTIMENT_ALERTS_OPEN = Gauge(
    "ecomstream_sentiment_alerts_open",
    "Sentiment incidents currently firing, per item partition owned by this worker.",
    ["partition"],
    registry=REGISTRY,
)
SENTIMENT_LATE_REVIEWS = Counter(
    "ecomstream_sentiment_late_reviews_total",
    "Scored reviews older than the window grace period, left out of the windows.",
    registry=REGISTRY,
)
RECOMMENDATION_UPDATES = Counter(
    "ecomstream_recommendation_updates_total",
    "Recommendation updates emitted.",
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The text exposition format of every metric above."""
    return generate_latest(REGISTRY)


def sample_values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples named ``name`` in an exposition text, keyed by their sorted labels.

    Why: the demo's summary and the tests read a worker's /metrics the way
    Prometheus would, instead of reaching into the worker.

    >>> text = 'x_total{topic="a"} 3.0\\nx_total{topic="b"} 1.0\\n'
    >>> sample_values(text, "x_total")
    {(('topic', 'a'),): 3.0, (('topic', 'b'),): 1.0}
    """
    values: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                values[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for k, v in sample_values(text, name).items() if wanted <= set(k))
