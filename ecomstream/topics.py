"""Create the contract's topics before a worker subscribes to them.

Why before: a Faust worker that subscribes to a topic that does not exist yet
ignores it for good ("Ignoring missing topic"), and broker-side creation is
asynchronous, so topics are created and awaited until every partition has a
leader, then the worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from ecomstream.config import Settings
from ecomstream.events import INPUT_TOPICS
from ecomstream.launchers.process import wait_for_async

log = logging.getLogger(__name__)

OUTPUT_TOPICS = ("review-scores", "sentiment-alerts", "recommendation-updates", "dead-letters")
CONTRACT_TOPICS = (*INPUT_TOPICS, *OUTPUT_TOPICS)
# Each app's own (Settings.internal_topic): the repartitions between its batch processors.
INTERNAL_TOPICS = ("item-deltas", "review-scores-by-user")


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    compacted: Iterable[str] = (),
    timeout: float = 60.0,
) -> None:
    """Create the missing topics and wait until each of their partitions has a leader."""
    wanted = list(dict.fromkeys(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        missing = [n for n in wanted if n not in set(await admin.list_topics())]
        if missing:
            log.info("creating topics %s", ", ".join(missing))
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                compact = set(compacted)
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            partitions,
                            replication_factor,
                            topic_configs={"cleanup.policy": "compact"} if n in compact else {},
                        )
                        for n in missing
                    ]
                )

        async def all_have_leaders() -> bool:
            described = await admin.describe_topics(wanted)
            return all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            )

        await wait_for_async(all_have_leaders, timeout, 0.05, description=f"leaders for {wanted}")
    finally:
        await admin.close()


async def ensure_contract_topics(settings: Settings) -> None:
    await ensure_topics(
        settings.bootstrap_servers,
        [
            *(settings.topic(n) for n in CONTRACT_TOPICS),
            *(settings.internal_topic(n) for n in INTERNAL_TOPICS),
        ],
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )


async def topic_sizes(bootstrap_servers: str, names: Iterable[str]) -> dict[str, int]:
    """Records per topic (sum of partition end offsets); 0 for a topic that does not exist."""
    wanted = list(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    tps = [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
    ]
    sizes = dict.fromkeys(wanted, 0)
    if not tps:
        return sizes
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        for tp, end in (await consumer.end_offsets(tps)).items():
            sizes[tp.topic] += end
    finally:
        await consumer.stop()
    return sizes


async def topics_with_prefix(bootstrap_servers: str, prefix: str) -> list[str]:
    """The existing topics whose names start with ``prefix`` (a replay or test namespace)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


async def delete_topics(
    bootstrap_servers: str, topics: Iterable[str], timeout: float = 60.0
) -> None:
    """Delete ``topics`` and return once the broker no longer describes any of them.

    Why wait: deletion is asynchronous on the broker; a topic of the same name
    created meanwhile would be deleted with it.
    """
    names = list(topics)
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()

    async def gone() -> bool:
        return not any([await partitions_of(bootstrap_servers, t) for t in names])

    await wait_for_async(gone, timeout, 0.2, description=f"deletion of {len(names)} topics")


async def partitions_of(bootstrap_servers: str, topic: str) -> list[int]:
    """The partition numbers of an existing topic ([] when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for t in described if t["error_code"] == 0 for p in t["partitions"]
    )


async def read_topic(bootstrap_servers: str, topic: str, timeout: float = 30.0) -> list[bytes]:
    """Every value in ``topic`` up to its current end (read_committed), partition by partition."""
    records = await read_records(bootstrap_servers, topic, timeout=timeout)
    return [r.value for r in records if r.value]


async def read_records(
    bootstrap_servers: str,
    topic: str | None = None,
    *,
    ranges: Mapping[TopicPartition, tuple[int, int]] | None = None,
    timeout: float = 60.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """The committed records of a whole ``topic`` (up to its end now), or of offset ``ranges``.

    ``ranges`` maps partitions to ``[start, end)``, an end past the partition's end
    meaning its end. One consumer, every partition
    assigned at once; records come partition by partition, in offset order.
    """
    if ranges is not None and all(end <= start for start, end in ranges.values()):
        return []  # (and aiokafka fails to stop a consumer that never waited on anything)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        if ranges is None:
            assert topic is not None
            tps = [TopicPartition(topic, p) for p in await partitions_of(bootstrap_servers, topic)]
            begins = await consumer.beginning_offsets(tps) if tps else {}
            ends = await consumer.end_offsets(tps) if tps else {}
            ranges = {tp: (begins[tp], ends[tp]) for tp in tps}
        else:  # a range past the end stops at the end (what is committed now)
            ends = await consumer.end_offsets(list(ranges))
            ranges = {tp: (start, min(end, ends[tp])) for tp, (start, end) in ranges.items()}
        todo = {tp: span for tp, span in ranges.items() if span[1] > span[0]}
        found: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {tp: [] for tp in todo}
        if not todo:
            return []
        consumer.assign(list(todo))
        for tp, (start, _) in todo.items():
            consumer.seek(tp, start)

        async def drain() -> None:
            while behind := [tp for tp in todo if await consumer.position(tp) < todo[tp][1]]:
                batches = await consumer.getmany(*behind, timeout_ms=200, max_records=10_000)
                for tp, records in batches.items():
                    found[tp] += [r for r in records if r.offset < todo[tp][1]]

        await asyncio.wait_for(drain(), timeout)
        return [r for tp in sorted(found) for r in found[tp]]
    finally:
        await consumer.stop()
