"""Changelog topics: their names, the records a commit writes, and recovery from them.

A table's changelog is a compacted topic, ``{group_id}-{table}-changelog``,
with as many partitions as the inputs: state partition ``p`` is written to
changelog partition ``p`` and only by the owner of input partition ``p``.
Record key = the table key (utf-8), value = the encoded value, ``None`` (a
tombstone) for a deleted key.

Recovery reads a changelog partition from its beginning up to the end offset
seen when the partition was assigned, ``read_committed``: with transactional
writers that end offset is the last stable offset, so an aborted or still
open transaction is never restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ecomstream.launchers.kafka import MAX_MESSAGE_BYTES, fetch_metadata
from ecomstream.processing.tables import PartitionStore, TableSpec

log = logging.getLogger(__name__)

#: Fetch sizes above the broker's message.max.bytes, so that big records pass.
FETCH_BYTES = 2 * MAX_MESSAGE_BYTES

#: Topic-level settings of every changelog topic.
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


class ChangelogError(RuntimeError):
    """A changelog or input topic is missing, mis-sized, or could not be read."""


def changelog_topic(group_id: str, table: str) -> str:
    """The changelog topic of ``table`` for the processor group ``group_id``.

    >>> changelog_topic("ecomstream-profiles", "counts")
    'ecomstream-profiles-counts-changelog'
    """
    return f"{group_id}-{table}-changelog"


def encode_changes(
    spec: TableSpec[Any], store: PartitionStore[Any], keys: Iterable[str]
) -> list[tuple[bytes, bytes | None]]:
    """Changelog records for ``keys``: one per key, its current value or a tombstone.

    ``keys`` is a set of dirty keys, so every key appears once however often
    it was written since the last commit.
    """
    data = store.data
    encode = spec.encode
    out: list[tuple[bytes, bytes | None]] = []
    append = out.append
    for key in keys:
        value = data.get(key, _GONE)
        append((key.encode(), None if value is _GONE else encode(value)))
    return out


_GONE: Any = object()


# --------------------------------------------------------------------------- topics


def _bootstrap_address(bootstrap_servers: str) -> tuple[str, int]:
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    return host or "127.0.0.1", int(port)


async def partition_counts(bootstrap_servers: str, topics: Sequence[str]) -> dict[str, int]:
    """Partition count of each of ``topics`` that exists (never auto-creates one)."""
    host, port = _bootstrap_address(bootstrap_servers)
    metadata = await asyncio.to_thread(fetch_metadata, host, port, 5.0, list(topics))
    return {name: len(parts) for name, parts in metadata.topics.items() if parts}


async def ensure_changelogs(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> None:
    """Create missing changelog topics (compacted, ``partitions`` wide); check existing ones.

    Raises :class:`ChangelogError` if a changelog exists with another
    partition count: its partitions would no longer line up with the inputs'.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    existing = await partition_counts(bootstrap_servers, topics)
    wrong = {t: n for t, n in existing.items() if n != partitions}
    if wrong:
        raise ChangelogError(
            f"changelog topics {wrong} do not have the inputs' {partitions} partitions"
        )
    missing = [t for t in topics if t not in existing]
    if missing:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
        )
        await admin.start()
        try:
            new = [
                NewTopic(t, partitions, replication_factor, topic_configs=dict(CHANGELOG_CONFIG))
                for t in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new, timeout_ms=int(timeout * 1000))
        finally:
            await admin.close()
        log.info("created changelog topics %s (%d partitions)", missing, partitions)
    deadline = time.monotonic() + timeout
    while True:
        counts = await partition_counts(bootstrap_servers, topics)
        if all(counts.get(t) == partitions for t in topics):
            return
        if time.monotonic() > deadline:
            raise ChangelogError(f"changelog topics not ready after {timeout:.0f}s: {counts}")
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- recovery


def recovery_consumer(bootstrap_servers: str, client_id: str) -> AIOKafkaConsumer:
    """A group-less ``read_committed`` consumer for reading changelogs."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=4 * FETCH_BYTES,
        fetch_max_wait_ms=50,
    )


async def end_offsets(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """End offsets as a ``read_committed`` reader sees them (the last stable offsets)."""
    if not partitions:
        return {}
    ends: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
    return ends


async def restore(
    consumer: AIOKafkaConsumer,
    stores: Mapping[TopicPartition, PartitionStore[Any]],
    decoders: Mapping[str, Callable[[bytes], Any]],
    ends: Mapping[TopicPartition, int],
    *,
    timeout: float = 600.0,
) -> int:
    """Read each changelog partition in ``stores`` from its beginning to ``ends`` into its store.

    ``decoders`` maps a changelog topic to its value decoder. Returns the
    number of records read. A partition whose end offset is 0 is not read.
    Raises :class:`ChangelogError` if the ends are not reached in ``timeout``.
    """
    todo = [tp for tp in stores if ends.get(tp, 0) > 0]
    if not todo:
        return 0
    consumer.assign(todo)
    await consumer.seek_to_beginning(*todo)
    remaining = set(todo)
    for tp in todo:
        if await consumer.position(tp) >= ends[tp]:
            remaining.discard(tp)
    count = 0
    deadline = time.monotonic() + timeout
    while remaining:
        if time.monotonic() > deadline:
            positions = {str(tp): await consumer.position(tp) for tp in remaining}
            raise ChangelogError(
                f"changelog recovery did not reach the end offsets in {timeout:.0f}s: "
                f"positions {positions}, ends { {str(tp): ends[tp] for tp in remaining} }"
            )
        batches = await consumer.getmany(*remaining, timeout_ms=200, max_records=50_000)
        for tp, records in batches.items():
            end = ends[tp]
            store = stores[tp]
            decode = decoders[tp.topic]
            count += store.restore(((r.key, r.value) for r in records if r.offset < end), decode)
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
                consumer.pause(tp)
    return count
