"""Events/s through the validation path of one worker, against the raw consume ceiling.

Variants, measured over the same pre-produced topics in one run, interleaved:
- ``aiokafka raw``: consume every partition + ``orjson.loads`` (the ceiling);
- ``aiokafka + triage``: the same consumer running ``ecomstream.ingest.triage``
  (what validation costs without Faust);
- ``worker``: a real ``streams`` worker process; validation runs in its behaviour
  processor together with the profile and recommendation work (there is no
  validation-only path any more), rate read from its /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from benchmarks.report import Variant, write
from ecomstream import metrics
from ecomstream.events import INPUT_TOPICS
from ecomstream.ingest import RawMessage, triage
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.launchers.process import find_free_port, wait_for
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.shop import generate
from ecomstream.testing.kafka import create_topics, produce_raw

PREFIX = "bench-"
PARTITIONS = 4


async def _produce(bootstrap: str, n_events: int, bad_every: int) -> int:
    by_topic: dict[str, list[tuple[bytes | None, bytes | None]]] = {t: [] for t in INPUT_TOPICS}
    config = SimConfig(seed=1, users=20_000, events=n_events, duration_s=None)
    for i, sim in enumerate(generate(config)):
        value = b'{"event_id": 1}' if i % bad_every == bad_every - 1 else sim.event.to_json()
        by_topic[sim.topic].append((sim.key.encode(), value))
    await create_topics(bootstrap, [PREFIX + t for t in INPUT_TOPICS], PARTITIONS)
    for topic, records in by_topic.items():
        await produce_raw(bootstrap, PREFIX + topic, records)
    return sum(len(r) for r in by_topic.values())


async def _consume(bootstrap: str, total: int, validate: bool) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(PREFIX + t, p) for t in INPUT_TOPICS for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5_000)
            for tp, records in batches.items():
                seen += len(records)
                topic = tp.topic.removeprefix(PREFIX)
                if validate:
                    triage(RawMessage(topic, r.partition, r.offset, r.key, r.value)
                           for r in records)  # fmt: skip
                else:
                    for r in records:
                        with contextlib.suppress(orjson.JSONDecodeError):
                            orjson.loads(r.value)
        return total / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def _worker_rate(bootstrap: str, total: int, work: Path) -> float:
    worker = WorkerProcess(
        work / f"worker-{uuid.uuid4().hex[:6]}",
        web_port=find_free_port(),
        settings={
            "bootstrap_servers": bootstrap,
            "topic_prefix": PREFIX,
            "app_id": f"bench-{uuid.uuid4().hex[:6]}",  # a fresh group: read from the start
            "store": "memory://",
        },
        loglevel="warn",
    )
    worker.start()
    try:
        samples: list[tuple[float, float]] = []

        def done() -> bool:
            seen = metrics.total(worker.metrics_text(), "ecomstream_events_consumed_total")
            samples.append((time.perf_counter(), seen))
            return seen >= total

        wait_for(done, timeout=600, interval=0.1, description="worker to consume everything")
        first = next(i for i, (_, n) in enumerate(samples) if n > 0)
        (t0, n0), (t1, n1) = samples[max(first - 1, 0)], samples[-1]
        return (n1 - n0) / (t1 - t0)
    finally:
        worker.stop()


def run(n_events: int = 200_000, repeats: int = 3, bad_every: int = 100) -> Path:
    with tempfile.TemporaryDirectory(prefix="ecomstream-bench-") as tmp:
        work = Path(tmp)
        broker = KafkaBroker(
            work / "kafka", port=find_free_port(), controller_port=find_free_port()
        )
        bootstrap = broker.start()
        try:
            total = asyncio.run(_produce(bootstrap, n_events, bad_every))
            raw = Variant("aiokafka raw consume + orjson.loads (ceiling)", "events/s")
            checked = Variant("aiokafka consume + ecomstream triage (no Faust)", "events/s")
            faust = Variant(
                "worker: behaviour processor (validation, dead letters, profiles, "
                "recommendations, item deltas; exactly-once)",
                "events/s",
                note="rate from /metrics polled every 0.1 s; excludes worker start-up",
            )
            for _ in tqdm(range(repeats), desc="ingest bench rounds"):
                raw.runs.append(asyncio.run(_consume(bootstrap, total, validate=False)))
                checked.runs.append(asyncio.run(_consume(bootstrap, total, validate=True)))
                faust.runs.append(_worker_rate(bootstrap, total, work))
        finally:
            broker.stop()
    return write(
        "ingest",
        "Validation path: events/s on one worker vs the raw consume ceiling",
        [raw, checked, faust],
        {"events": total, "invalid_share": f"1/{bad_every}", "partitions": PARTITIONS,
         "kafka": "local KRaft broker, same machine"},
    )  # fmt: skip
