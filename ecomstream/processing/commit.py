"""The commit: what it carries (outputs, changelog records, input offsets) and how it is written.

A :class:`CommitPayload` is a snapshot taken between two handler calls: the
outputs queued since the last commit, one changelog record per dirty key
(encoded at snapshot time, so later in-place changes go to the next commit),
and the next input offset of every partition that moved.

Written transactionally (exactly-once), the payload is one Kafka
transaction: outputs, changelog records, ``send_offsets_to_transaction``,
commit. Either all of it becomes visible to ``read_committed`` readers and
to the group's committed offsets, or none of it does.

Written without a transactional id (at-least-once), records are sent and
acknowledged first and the offsets committed after: a crash in between
replays events, so counts may go up twice.

Immediate outputs (a processor's ``immediate_topics``) are not part of any
transaction: they are sent right after the batch that made them, and a
payload only carries their delivery futures, which must all be acknowledged
before the payload's offsets are committed. They are at-least-once: a crash
before that commit replays the batch, and the handler sends them again (same
ids; content that depends on other state may differ).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from ecomstream.processing.changelog import encode_changes
from ecomstream.processing.context import OutputRecord
from ecomstream.processing.tables import PartitionStore, TableSpec

ChangelogRecords = dict[TopicPartition, list[tuple[bytes, bytes | None]]]


@dataclass
class CommitPayload:
    """Everything one commit writes."""

    outputs: list[OutputRecord] = field(default_factory=list)
    changelog: ChangelogRecords = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    immediate: list[asyncio.Future[Any]] = field(default_factory=list)  # already sent

    @property
    def empty(self) -> bool:
        return not (self.outputs or self.changelog or self.offsets or self.immediate)

    @property
    def changelog_count(self) -> int:
        return sum(len(records) for records in self.changelog.values())


def snapshot(
    changelogs: Mapping[str, str],
    specs: Mapping[str, TableSpec[Any]],
    stores: Mapping[int, Mapping[str, PartitionStore[Any]]],
    outputs: list[OutputRecord],
    positions: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
) -> CommitPayload:
    """Take a commit's worth of changes: dirty keys (then cleared), outputs, moved offsets.

    ``changelogs`` maps a table name to its changelog topic; ``stores`` maps
    a partition number to that partition's stores by table name. The dirty
    sets are swapped for empty ones: a key changed after the snapshot is
    dirty again for the next commit.
    """
    changelog: ChangelogRecords = {}
    for partition, tables in stores.items():
        for name, store in tables.items():
            if store.dirty:
                keys = store.take_dirty()
                changelog[TopicPartition(changelogs[name], partition)] = encode_changes(
                    specs[name], store, keys
                )
    offsets = {tp: off for tp, off in positions.items() if committed.get(tp) != off}
    return CommitPayload(list(outputs), changelog, offsets)


class RecordWriter:
    """Sends records as whole per-partition batches (``create_batch``/``send_batch``).

    Why: ``producer.send`` costs a future and a coroutine per record; a
    commit writes thousands of records to a handful of partitions, which
    a few batches carry at a fraction of the cost. Keyed records without an
    explicit partition go where the Java client would put them (murmur2).
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}
        self._partitioner = DefaultPartitioner()

    async def _partition_list(self, topic: str) -> list[int]:
        found = self._partitions.get(topic)
        if found is None:
            found = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = found
        return found

    async def send_outputs(self, records: Iterable[OutputRecord]) -> list[asyncio.Future[Any]]:
        grouped: dict[tuple[str, int], list[OutputRecord]] = defaultdict(list)
        for record in records:
            partition = record.partition
            if partition is None:
                partitions = await self._partition_list(record.topic)
                partition = self._partitioner(record.key, partitions, partitions)
            grouped[(record.topic, partition)].append(record)
        futures: list[asyncio.Future[Any]] = []
        for (topic, partition), group in grouped.items():
            futures += await self._send(
                topic,
                partition,
                ((r.key, r.value, r.timestamp_ms, list(r.headers)) for r in group),
            )
        return futures

    async def send_changelog(
        self, changelog: ChangelogRecords
    ) -> dict[TopicPartition, list[asyncio.Future[Any]]]:
        sent: dict[TopicPartition, list[asyncio.Future[Any]]] = {}
        for tp, records in changelog.items():
            sent[tp] = await self._send(
                tp.topic, tp.partition, ((k, v, None, []) for k, v in records)
            )
        return sent

    async def _send(
        self,
        topic: str,
        partition: int,
        records: Iterable[tuple[bytes | None, bytes | None, int | None, list[Any]]],
    ) -> list[asyncio.Future[Any]]:
        producer = self._producer
        futures: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for key, value, timestamp, headers in records:
            if batch.append(key=key, value=value, timestamp=timestamp, headers=headers) is None:
                if batch.record_count():
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    appended = batch.append(
                        key=key, value=value, timestamp=timestamp, headers=headers
                    )
                    if appended is not None:
                        continue
                # Bigger than a whole batch: the ordinary path checks its size.
                futures.append(
                    await producer.send(
                        topic, value, key, partition, timestamp_ms=timestamp, headers=headers
                    )
                )
                batch = producer.create_batch()
        if batch.record_count():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        for future in futures:
            future.add_done_callback(_retrieve)
        return futures


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a failed batch fails the transaction; do not log it twice


def last_offsets(
    sent: Mapping[TopicPartition, list[asyncio.Future[Any]]],
) -> dict[TopicPartition, int]:
    """Per partition, the highest batch base offset written (from completed futures).

    Enough to tell when a transaction became visible: a ``read_committed``
    end offset (the last stable offset) above any offset of the transaction
    means the transaction is no longer open.
    """
    last: dict[TopicPartition, int] = {}
    for tp, futures in sent.items():
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is None:
                meta = future.result()
                if isinstance(meta, RecordMetadata):
                    last[tp] = max(last.get(tp, -1), meta.offset)
    return last


def output_offsets(futures: Iterable[asyncio.Future[Any]]) -> dict[TopicPartition, int]:
    """Per output partition, the highest batch base offset written (completed futures)."""
    grouped: dict[TopicPartition, list[asyncio.Future[Any]]] = defaultdict(list)
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is None:
            meta = future.result()
            if isinstance(meta, RecordMetadata):
                grouped[TopicPartition(meta.topic, meta.partition)].append(future)
    return last_offsets(grouped)
