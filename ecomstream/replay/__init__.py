"""Replays: the real worker over recorded input, in an isolated namespace, deterministically."""

from ecomstream.replay.driver import ReplayConfig, ReplayError, namespace_prefix, run_replay
from ecomstream.replay.outputs import OUTPUT_TOPICS, TopicDiff, collect_outputs, compare_outputs
from ecomstream.replay.source import (
    OffsetRange,
    RecordedEvent,
    event_time_steps,
    read_jsonl_source,
    read_kafka_source,
)

__all__ = [
    "OUTPUT_TOPICS",
    "OffsetRange",
    "RecordedEvent",
    "ReplayConfig",
    "ReplayError",
    "TopicDiff",
    "collect_outputs",
    "compare_outputs",
    "event_time_steps",
    "namespace_prefix",
    "read_jsonl_source",
    "read_kafka_source",
    "run_replay",
]
