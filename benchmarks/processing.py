"""Events/s through :class:`ecomstream.processing.BatchProcessor` vs the raw consume ceiling.

Variants, over the same pre-produced topics (the simulator's clicks,
purchases and reviews, keyed by user) in one run, interleaved:

- ``aiokafka raw``: a group-less ``read_committed`` consumer reading every
  partition, touching each record (the ceiling);
- ``processor, at-least-once``: the runtime with a counting handler (a
  per-user count table with its changelog, one output per 10 events),
  commits every ``commit_interval_ms`` without transactions;
- ``processor, exactly-once``: the same with a transactional id (outputs,
  changelog and offsets in one transaction per commit), at the default
  commit interval and at a longer one.

A processor's rate is taken from its own event counter, polled every 10 ms,
between the first processed event and the last (start-up and group join
excluded; the commits made meanwhile included). Every run uses a fresh
group, so it reads the topics from the start and restores nothing.

    .venv/bin/python -m benchmarks.processing --events 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from benchmarks.report import Variant, write
from ecomstream.events import INPUT_TOPICS
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.launchers.process import find_free_port
from ecomstream.processing import BatchContext, BatchProcessor, Record, TableSpec
from ecomstream.processing.changelog import FETCH_BYTES
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.shop import generate
from ecomstream.testing.kafka import create_topics, produce_raw

PREFIX = "bench-proc-"
OUTPUT = PREFIX + "out"
PARTITIONS = 4
OUTPUT_EVERY = 10

COUNTS = TableSpec[int]("counts", encode=lambda n: b"%d" % n, decode=int)


def counting_handler(ctx: BatchContext, records: Sequence[Record]) -> None:
    """Count events per user; one output (the running count) per 10 events."""
    counts = ctx.table(COUNTS)
    get = counts.get
    for r in records:
        key = r.key.decode() if r.key is not None else ""
        n = get(key, 0) + 1
        counts[key] = n
        if r.offset % OUTPUT_EVERY == 0:
            ctx.send(OUTPUT, r.key, b"%d" % n)


def _inputs() -> list[str]:
    return [PREFIX + t for t in INPUT_TOPICS]


async def _produce(bootstrap: str, n_events: int, users: int) -> int:
    by_topic: dict[str, list[tuple[bytes | None, bytes | None]]] = {t: [] for t in INPUT_TOPICS}
    config = SimConfig(seed=1, users=users, events=n_events, duration_s=None)
    for sim in generate(config):
        by_topic[sim.topic].append((sim.key.encode(), sim.event.to_json()))
    await create_topics(bootstrap, [*_inputs(), OUTPUT], PARTITIONS)
    for topic, records in by_topic.items():
        await produce_raw(bootstrap, PREFIX + topic, records)
    return sum(len(r) for r in by_topic.values())


async def _raw(bootstrap: str, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t, p) for t in _inputs() for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for r in records:
                    seen += r.key is not None
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _processor(
    bootstrap: str, total: int, *, transactional: bool, commit_interval_ms: int
) -> float:
    tag = uuid.uuid4().hex[:8]
    processor = BatchProcessor(
        bootstrap,
        f"bench-{tag}",
        _inputs(),
        [COUNTS],
        counting_handler,
        transactional_id=f"bench-{tag}" if transactional else None,
        commit_interval_ms=commit_interval_ms,
        max_batch=5000,
    )
    await processor.start()
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while processor.stats.events < total:
            if processor.error is not None:
                raise RuntimeError("processor crashed") from processor.error
            if time.monotonic() > deadline:
                raise TimeoutError(f"processed {processor.stats.events}/{total} in 600 s")
            if first is None and processor.stats.events:
                first = (time.perf_counter(), processor.stats.events)
            await asyncio.sleep(0.01)
        end = time.perf_counter()
        assert first is not None
        return (total - first[1]) / (end - first[0])
    finally:
        await processor.stop()


def run(
    n_events: int = 200_000, repeats: int = 3, users: int = 20_000, long_interval_ms: int = 1000
) -> Path:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ecomstream-bench-") as tmp:
        broker = KafkaBroker(
            Path(tmp) / "kafka", port=find_free_port(), controller_port=find_free_port()
        )
        bootstrap = broker.start()
        try:
            total = asyncio.run(_produce(bootstrap, n_events, users))
            raw = Variant("aiokafka raw consume, read_committed (ceiling)", "events/s")
            alo = Variant(
                "processor, at-least-once, commit 100 ms",
                "events/s",
                note="count table + changelog + 1 output/10 events; no transactions",
            )
            eos = Variant(
                "processor, exactly-once, commit 100 ms",
                "events/s",
                note="one transaction per commit: outputs + changelog + offsets",
            )
            eos_long = Variant(f"processor, exactly-once, commit {long_interval_ms} ms", "events/s")
            for _ in tqdm(range(repeats), desc="processing bench rounds"):
                raw.runs.append(asyncio.run(_raw(bootstrap, total)))
                alo.runs.append(
                    asyncio.run(
                        _processor(bootstrap, total, transactional=False, commit_interval_ms=100)
                    )
                )
                eos.runs.append(
                    asyncio.run(
                        _processor(bootstrap, total, transactional=True, commit_interval_ms=100)
                    )
                )
                eos_long.runs.append(
                    asyncio.run(
                        _processor(
                            bootstrap,
                            total,
                            transactional=True,
                            commit_interval_ms=long_interval_ms,
                        )
                    )
                )
        finally:
            broker.stop()
    return write(
        "processing",
        "Batch processor: events/s on one worker (state + changelog + outputs) vs raw consume",
        [raw, alo, eos, eos_long],
        {
            "events": total,
            "users": users,
            "partitions": PARTITIONS,
            "input_topics": len(INPUT_TOPICS),
            "max_batch": 5000,
            "output_every": OUTPUT_EVERY,
            "kafka": "local KRaft broker, same machine",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(run(args.events, args.repeats, args.users).read_text())


if __name__ == "__main__":
    main()
