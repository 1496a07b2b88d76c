"""``make demo``: the whole pipeline on local defaults, with a live summary.

Starts a real Kafka broker and one worker, runs the simulator for a short
scenario (plus a few hostile messages so dead letters show up), prints what
flows through each topic every few seconds, and stops everything it started,
also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ecomstream import metrics
from ecomstream.events import INPUT_TOPICS
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.launchers.process import find_free_port, port_is_free, wait_for_async
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.runner import RunSummary, run_to_kafka
from ecomstream.topics import CONTRACT_TOPICS, OUTPUT_TOPICS, ensure_topics, topic_sizes

HOSTILE: tuple[tuple[str, bytes | None], ...] = (
    ("clicks", b'{"event_id": "x1", "user_id": '),
    ("clicks", b""),
    ("purchases", b'{"event_id":"x2","order_id":"o","user_id":"u","item_id":"i",'
                  b'"category":"c","price":"free","quantity":1,"ts":1767225600000}'),
    ("reviews", b'{"text": "\xff\xfe broken bytes"}'),
    ("reviews", None),
)  # fmt: skip


@dataclass
class DemoPlan:
    """What the demo runs; the defaults take about a minute on 2 cores."""

    workdir: Path = Path("var/demo")
    seed: int = 7
    users: int = 3_000
    items: int = 400
    duration_s: float = 2 * 3600  # simulated event time
    rate: float = 3_000  # events/s produced
    random_incidents: int = 2
    kafka_port: int = 9092
    web_port: int = 6066
    refresh_s: float = 3.0


@dataclass
class Snapshot:
    """Counts the summary prints: topic end offsets and the worker's own metrics."""

    topic_counts: dict[str, int] = field(default_factory=dict)
    consumed: float = 0.0
    processed: dict[str, float] = field(default_factory=dict)
    dead_letters: dict[str, float] = field(default_factory=dict)

    def render(self, elapsed: float) -> str:
        inputs = " ".join(f"{t}={self.topic_counts.get(t, 0):,}" for t in INPUT_TOPICS)
        outputs = " ".join(f"{t}={self.topic_counts.get(t, 0):,}" for t in OUTPUT_TOPICS)
        valid = " ".join(f"{t}={int(n):,}" for t, n in sorted(self.processed.items()))
        dead = ", ".join(f"{r}={int(n)}" for r, n in sorted(self.dead_letters.items())) or "none"
        return (
            f"[{elapsed:6.1f}s] in: {inputs}\n"
            f"          worker consumed={int(self.consumed):,} valid: {valid or '-'}\n"
            f"          dead letters by reason: {dead}\n"
            f"          out: {outputs}"
        )


def _port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else find_free_port()


def snapshot_worker(worker: WorkerProcess, into: Snapshot) -> None:
    text = worker.metrics_text()
    into.consumed = metrics.total(text, "ecomstream_events_consumed_total")
    into.processed = {
        dict(k)["topic"]: v
        for k, v in metrics.sample_values(text, "ecomstream_events_processed_total").items()
    }
    dead: dict[str, float] = {}
    for labels, value in metrics.sample_values(text, "ecomstream_dead_letters_total").items():
        reason = dict(labels)["reason"]
        dead[reason] = dead.get(reason, 0) + value
    into.dead_letters = dead


async def _send_hostile(bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, value in HOSTILE:
            await producer.send_and_wait(topic, value=value, key=b"demo-hostile")
    finally:
        await producer.stop()


@contextlib.contextmanager
def _started(stop: Callable[[], object]) -> Iterator[None]:
    try:
        yield
    finally:
        stop()


async def _run(plan: DemoPlan, say: Callable[[str], None]) -> Snapshot:
    if plan.workdir.exists():
        shutil.rmtree(plan.workdir)  # each demo starts from empty topics and state
    kafka = KafkaBroker(
        plan.workdir / "kafka", port=_port(plan.kafka_port), controller_port=find_free_port()
    )
    say("starting Apache Kafka (KRaft, single node)...")
    bootstrap = kafka.start()
    say(f"  Kafka ready at {bootstrap}")
    with _started(kafka.stop):
        await ensure_topics(bootstrap, CONTRACT_TOPICS, partitions=4)
        worker = WorkerProcess(
            plan.workdir / "worker",
            web_port=_port(plan.web_port),
            settings={"bootstrap_servers": bootstrap, "store": "rocksdb://"},
        )
        say("starting the ecomstream worker...")
        worker.start()
        say(f"  worker ready; metrics at {worker.metrics_url}, log {worker.log_path}")
        with _started(worker.stop):
            return await _simulate_and_watch(plan, bootstrap, worker, say)


async def _simulate_and_watch(
    plan: DemoPlan, bootstrap: str, worker: WorkerProcess, say: Callable[[str], None]
) -> Snapshot:
    config = SimConfig(
        seed=plan.seed,
        users=plan.users,
        items=plan.items,
        duration_s=plan.duration_s,
        random_incidents=plan.random_incidents,
    )
    say(
        f"simulating {plan.duration_s / 3600:.1f} h of shop traffic at {plan.rate:,.0f} events/s "
        f"(seed {plan.seed}, {plan.users:,} users, {plan.random_incidents} incidents)"
    )
    started = time.monotonic()
    snap = Snapshot()
    truth = plan.workdir / "truth.json"
    simulation: asyncio.Task[RunSummary] = asyncio.create_task(
        run_to_kafka(config, bootstrap_servers=bootstrap, rate=plan.rate, truth_path=truth)
    )
    await _send_hostile(bootstrap)
    while not simulation.done():
        await asyncio.wait({simulation}, timeout=plan.refresh_s)
        snap.topic_counts = await topic_sizes(bootstrap, CONTRACT_TOPICS)
        snapshot_worker(worker, snap)
        say(snap.render(time.monotonic() - started))
    summary = simulation.result()
    produced = summary.events + len(HOSTILE)
    say(summary.line())

    async def drained() -> bool:
        snapshot_worker(worker, snap)
        return snap.consumed >= produced

    await wait_for_async(drained, timeout=300, interval=0.5, description="worker to drain")
    snap.topic_counts = await topic_sizes(bootstrap, CONTRACT_TOPICS)
    say("\n=== summary ===")
    say(snap.render(time.monotonic() - started))
    say(f"ground truth (incidents, next purchases): {truth}")
    incidents = orjson.loads(truth.read_bytes()).get("incidents", [])
    for incident in incidents:
        say(f"  incident: item {incident['item_id']} from ts {incident['start_ts']}")
    return snap


def run_demo(plan: DemoPlan | None = None, say: Callable[[str], None] = print) -> Snapshot:
    """Run the demo to its summary; everything started is stopped on exit or Ctrl-C."""
    return asyncio.run(_run(plan or DemoPlan(), say))
