"""Pytest plugin: a real Kafka broker per test session, and small async Kafka helpers.

Fixtures:
    ``kafka_broker`` (session): a started :class:`KafkaBroker` on free ports in
    a temporary data dir; ``.bootstrap_servers`` is what clients need.
    ``kafka_broker_factory`` (function): make extra, unstarted brokers (for
    restart tests); every one is stopped by PID at teardown.

Helpers (usable from any async test): :func:`create_topics`,
:func:`produce_raw`, :func:`consume_until`, :func:`consume_all`,
:func:`group_caught_up`, and the
generic :func:`wait_for` / :func:`wait_for_async` poll-with-deadline helpers.

aiokafka is imported inside the helpers so that loading this plugin (it is
listed in ``tests/conftest.py``) costs nothing for unit tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ecomstream.launchers.kafka import (
    MAX_MESSAGE_BYTES,
    KafkaBroker,
    KafkaError,
    fetch_metadata,
    java_executable,
)
from ecomstream.launchers.process import find_free_port, wait_for, wait_for_async
from ecomstream.topics import ensure_topics, partitions_of

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import RecordMetadata

__all__ = [
    "Record",
    "consume_all",
    "consume_until",
    "create_topics",
    "free_port_pair",
    "group_caught_up",
    "kafka_broker",
    "kafka_broker_factory",
    "produce_raw",
    "wait_for",
    "wait_for_async",
]

#: Consumer fetch sizes above the broker's message.max.bytes, so big records pass.
_FETCH_BYTES = 2 * MAX_MESSAGE_BYTES


# --------------------------------------------------------------------------- fixtures


def free_port_pair() -> tuple[int, int]:
    """Two distinct free ports on 127.0.0.1 (client listener, controller)."""
    port = find_free_port()
    controller_port = find_free_port()
    while controller_port == port:
        controller_port = find_free_port()
    return port, controller_port


def _require_java() -> None:
    try:
        java_executable()
    except KafkaError as exc:
        pytest.skip(f"the real Kafka broker cannot run here: {exc}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real single-node Kafka for the whole session; stopped by PID at the end."""
    _require_java()
    port, controller_port = free_port_pair()
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"),
        port=port,
        controller_port=controller_port,
        fast_start=True,
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., KafkaBroker]]:
    """Make unstarted brokers on fresh ports and data dirs; all are stopped at teardown.

    Keyword arguments go to :class:`KafkaBroker` (e.g. ``data_dir=`` to reuse one).
    """
    _require_java()
    made: list[KafkaBroker] = []

    def make(**kwargs: Any) -> KafkaBroker:
        port, controller_port = free_port_pair()
        kwargs.setdefault("port", port)
        kwargs.setdefault("controller_port", controller_port)
        kwargs.setdefault("fast_start", True)
        data_dir = kwargs.pop("data_dir", None) or tmp_path_factory.mktemp("kafka-extra")
        broker = KafkaBroker(data_dir, **kwargs)
        made.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in made:
            broker.stop()


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Record:
    """One consumed record, decoupled from aiokafka's types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> None:
    """Create topics (existing ones are left as they are) and wait until all have leaders."""
    await ensure_topics(
        bootstrap,
        names,
        partitions=partitions,
        replication_factor=replication_factor,
        timeout=timeout,
    )


async def produce_raw(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
    headers: Sequence[tuple[str, bytes]] | None = None,
    timestamp_ms: int | None = None,
) -> list[RecordMetadata]:
    """Produce raw ``(key, value)`` bytes (None allowed) with acks=all; return their metadata.

    Order is kept per partition; big records (up to the broker limit) pass.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_request_size=_FETCH_BYTES,
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=value,
                key=key,
                partition=partition,
                headers=list(headers) if headers else None,
                timestamp_ms=timestamp_ms,
            )
            for key, value in records
        ]
        return [await future for future in futures]
    finally:
        await producer.stop()


async def consume_until(
    bootstrap: str,
    topic: str,
    until: int | Callable[[list[Record]], bool],
    timeout: float = 15.0,
    *,
    isolation_level: str = "read_committed",
) -> list[Record]:
    """Read ``topic`` from the beginning (no group) until ``until`` holds; return all read.

    ``until`` is a record count or a predicate over the records read so far.
    Waits for the topic to exist. Raises ``TimeoutError`` (with how many
    records were seen) if the condition is not met within ``timeout``.
    ``read_committed`` by default: what a downstream consumer would see.
    """
    done = _count_reached(until) if isinstance(until, int) else until

    records: list[Record] = []
    deadline = time.monotonic() + timeout
    consumer, _ = await _assigned_consumer(bootstrap, topic, timeout, isolation_level)
    try:
        while not done(records):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = [(r.partition, r.offset, r.key) for r in records[-3:]]
                raise TimeoutError(
                    f"{topic}: condition not met after {timeout:.1f}s; "
                    f"{len(records)} records read, last (partition, offset, key): {tail}"
                )
            records += await _fetch(consumer, min(remaining, 0.5))
    finally:
        await consumer.stop()
    return records


async def group_caught_up(bootstrap: str, group: str, topics: Sequence[str]) -> bool:
    """The group's committed offsets reached the end of every partition of ``topics``.

    Why: "the worker has processed everything" is a property of its committed
    offsets, which the tests can read the way an operator would. The end is the
    ``read_committed`` end: past a transactional topic's last record sits its
    commit marker, which the processors commit past once idle (a partition that
    never held a record counts as caught up).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(bootstrap, t)]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
    finally:
        await consumer.stop()
    return all((committed[tp].offset if tp in committed else starts[tp]) >= ends[tp] for tp in tps)


def _count_reached(count: int) -> Callable[[list[Record]], bool]:
    return lambda records: len(records) >= count


async def consume_all(
    bootstrap: str,
    topic: str,
    timeout: float = 15.0,
    *,
    isolation_level: str = "read_committed",
) -> list[Record]:
    """Everything in ``topic`` up to its end offsets as of the call (no group).

    Why: "nothing else arrived" and "no duplicates" checks need the whole
    topic, not a count.
    """
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    consumer, partitions = await _assigned_consumer(bootstrap, topic, timeout, isolation_level)
    try:
        ends = await consumer.end_offsets(partitions)
        while not await _reached(consumer, ends):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{topic}: end offsets {ends} not reached in {timeout:.1f}s")
            records += await _fetch(consumer, min(remaining, 0.5))
    finally:
        await consumer.stop()
    return records


async def _assigned_consumer(
    bootstrap: str, topic: str, timeout: float, isolation_level: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A group-less consumer assigned every partition of ``topic``, at the beginning.

    Waits for the topic to exist rather than letting aiokafka's metadata
    requests auto-create it with the broker's default partition count.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    found = await wait_for_async(
        lambda: asyncio.to_thread(_partitions, bootstrap, topic),
        timeout,
        0.1,
        description=f"topic {topic!r} to exist",
        ignore=(OSError,),
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        max_partition_fetch_bytes=_FETCH_BYTES,
        fetch_max_bytes=4 * _FETCH_BYTES,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning()
    except BaseException:
        await consumer.stop()
        raise
    return consumer, assigned


def _partitions(bootstrap: str, topic: str) -> tuple[int, ...]:
    """The topic's partitions, () if it does not exist (without auto-creating it)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return fetch_metadata(host, int(port), topics=[topic]).topics.get(topic, ())


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def _fetch(consumer: AIOKafkaConsumer, timeout: float) -> list[Record]:
    batches = await consumer.getmany(timeout_ms=int(timeout * 1000))
    return [
        Record(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=tuple((k, bytes(v)) for k, v in message.headers),
            timestamp=message.timestamp,
        )
        for _, messages in sorted(batches.items(), key=lambda item: item[0].partition)
        for message in messages
    ]
