"""Recorded input for a replay: a simulator JSONL file, or a range of the input topics.

Why steps of event time: the replay feeds the pipeline one step at a time and
lets it drain in between (:mod:`ecomstream.replay.driver`), so what each batch
holds depends on the recording alone. A record's step follows the newest event
time seen so far on its partition, so a late event stays behind its
predecessors there instead of jumping back into an earlier step.

>>> records = [RecordedEvent("clicks", 0, b"u1", b"{}", ts) for ts in (0, 70_000, 65_000, 130_000)]
>>> [[r.ts for r in step] for step in event_time_steps(records, 60_000)]
[[0], [70000, 65000], [130000]]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from ecomstream.events import INPUT_TOPICS
from ecomstream.topics import partitions_of, read_records


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One input message as recorded; ``partition`` None = let the key decide."""

    topic: str  # the contract name (no prefix)
    partition: int | None
    key: bytes | None
    value: bytes | None
    ts: int  # event time (the value's ``ts``; else the last one on its partition)
    timestamp: int | None = None  # the Kafka record timestamp to write (None: now)


@dataclass(frozen=True)
class OffsetRange:
    """``[start, end)`` of one input topic partition (contract topic name)."""

    topic: str
    partition: int
    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> OffsetRange:
        """``clicks/0=100:2000`` (end exclusive).

        >>> OffsetRange.parse("clicks/2=10:20")
        OffsetRange(topic='clicks', partition=2, start=10, end=20)
        """
        try:
            where, _, span = text.partition("=")
            topic, _, partition = where.partition("/")
            start, _, end = span.partition(":")
            found = cls(topic, int(partition), int(start), int(end))
        except ValueError as exc:
            raise ValueError(f"offset range {text!r}: expected TOPIC/PARTITION=START:END") from exc
        if found.topic not in INPUT_TOPICS or not 0 <= found.start <= found.end:
            raise ValueError(f"offset range {text!r}: unknown topic or empty range")
        return found


def read_jsonl_source(path: Path) -> list[RecordedEvent]:
    """The events of a simulator JSONL file, in file order (event-time order)."""
    events: list[RecordedEvent] = []
    last_ts = 0
    with path.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = orjson.loads(line)
            value = record.get("value")
            raw = orjson.dumps(value) if value is not None else None
            ts = value.get("ts") if isinstance(value, dict) else None
            last_ts = ts if isinstance(ts, int) else last_ts
            key = record.get("key")
            events.append(
                RecordedEvent(
                    str(record["topic"]), None, key.encode() if key else None, raw, last_ts
                )
            )
    return events


async def read_kafka_source(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    since_ms: int | None = None,
    until_ms: int | None = None,
    offsets: Sequence[OffsetRange] = (),
) -> list[RecordedEvent]:
    """Input records of ``{prefix}clicks|purchases|reviews``, by record time or offsets.

    ``since_ms``/``until_ms`` select by Kafka record timestamp (when a record was
    written, unless its producer set it), through the broker's time index. With
    ``offsets``, only the listed partitions are read, each over its range.
    Reads ``read_committed`` with no consumer group: the source is never touched.
    """
    if offsets:
        ranges = {TopicPartition(prefix + r.topic, r.partition): (r.start, r.end) for r in offsets}
    else:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
        await consumer.start()
        try:
            ranges = await _ranges(consumer, bootstrap_servers, prefix, since_ms, until_ms)
        finally:
            await consumer.stop()
    records = await read_records(bootstrap_servers, ranges=ranges, timeout=600)
    events: list[RecordedEvent] = []
    last_ts: dict[tuple[str, int], int] = {}
    for r in records:
        stream = (r.topic, r.partition)
        ts = _event_ts(r.value, last_ts.get(stream, r.timestamp))
        last_ts[stream] = ts
        topic = r.topic.removeprefix(prefix)
        events.append(RecordedEvent(topic, r.partition, r.key, r.value, ts, r.timestamp))
    return events


def _event_ts(value: bytes | None, default: int) -> int:
    """The event time in a message value, or ``default`` for one that has none."""
    try:
        ts = orjson.loads(value or b"null").get("ts")
    except (orjson.JSONDecodeError, AttributeError):
        return default
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else default


async def _ranges(
    consumer: AIOKafkaConsumer,
    bootstrap_servers: str,
    prefix: str,
    since_ms: int | None,
    until_ms: int | None,
) -> dict[TopicPartition, tuple[int, int]]:
    tps = [
        TopicPartition(prefix + topic, p)
        for topic in INPUT_TOPICS
        for p in await partitions_of(bootstrap_servers, prefix + topic)
    ]
    if not tps:
        raise ValueError(f"no input topics {[prefix + t for t in INPUT_TOPICS]} found")
    begins = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    starts = await _offsets_at(consumer, tps, since_ms, begins, ends)
    stops = await _offsets_at(consumer, tps, until_ms, ends, ends)
    return {tp: (starts[tp], stops[tp]) for tp in tps}


async def _offsets_at(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    at_ms: int | None,
    default: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Per partition, the first offset whose timestamp is >= ``at_ms`` (else the end)."""
    if at_ms is None:
        return dict(default)
    found = await consumer.offsets_for_times(dict.fromkeys(tps, at_ms))
    return {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in tps}


def event_time_steps(
    events: Sequence[RecordedEvent], step_ms: int
) -> Iterator[list[RecordedEvent]]:
    """Consecutive event-time steps of ``step_ms`` (empty ones skipped), input order kept."""
    if step_ms <= 0:
        raise ValueError("step_ms must be positive")
    steps: dict[int, list[RecordedEvent]] = {}
    newest: dict[tuple[str, int | None], int] = {}
    for event in events:
        stream = (event.topic, event.partition)
        ts = max(event.ts, newest.get(stream, event.ts))
        newest[stream] = ts
        steps.setdefault(ts // step_ms, []).append(event)
    for index in sorted(steps):
        yield steps[index]
