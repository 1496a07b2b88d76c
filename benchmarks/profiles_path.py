"""Clicks and purchases per second through the profile and recommendation path of one worker.

Variants over the same pre-produced simulator topics, in one run:
- ``aiokafka raw``: the consume ceiling;
- ``worker``: the real worker (behaviour and item processors, exactly-once,
  changelogged profiles, item deltas, recommendation updates), with ``memory://``
  tables, and once per round with ``rocksdb://`` tables, once with the Python
  replica and ranking instead of the Rust ones (``native/``; identical output), and
  once with the item processor committing as often as the behaviour one (default
  500 ms: more item records written and installed);
- ``naive faust``: the same logic as a one-event-at-a-time Faust agent with one
  table write per event.
The worker runs once per commit interval of ``commit_intervals`` in each round
(the first one is the default, ``Settings.commit_interval_ms``), so what a shorter
interval costs in throughput is measured in the same run. Then paced runs at 2,000
events/s measure the latency from a click or purchase being produced (its Kafka
create time) to the recommendation update it triggered arriving at a
``read_committed`` reader in this process (wall clock, same machine): what a
downstream service sees; the update's create time (when the worker's producer took
it) splits that into the worker's share and the delivery's. Variants: updates sent
right after their batch (``recommendation_delivery=immediate``, the default) and in the commit's
transaction (``transactional``) at each commit interval. This process's own
garbage collector is off during a paced run: its full collections (the simulator
holds every user) stalled the reader thread for up to ~200 ms, which showed as
latency the worker never caused.

Every throughput round runs on a new broker (the inputs produced again), and the
latency runs on one more; on each, a first worker run warms the broker up and is
discarded, and each latency run deletes its topics when done: see ``_fresh_broker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from tqdm import tqdm

from benchmarks.ingest import PARTITIONS, _consume, _produce
from benchmarks.report import Variant, write
from ecomstream import metrics
from ecomstream.config import Settings
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.launchers.process import find_free_port, wait_for
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.profiles.config import DEFAULT_PROFILE_CONFIG
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.runner import RunSummary, run_to_kafka
from ecomstream.testing.kafka import consume_all
from ecomstream.topics import delete_topics, partitions_of, topics_with_prefix

PREFIX = "bench-"


EVENTS_PROCESSED = "ecomstream_events_processed_total"


def _rate(worker: WorkerProcess, total: int, metric: str) -> float:
    samples: list[tuple[float, float]] = []

    def done() -> bool:
        seen = metrics.total(worker.metrics_text(), metric)
        samples.append((time.perf_counter(), seen))
        return seen >= total

    wait_for(done, timeout=900, interval=0.2, description="worker to process everything")
    first = next(i for i, (_, n) in enumerate(samples) if n > 0)
    (t0, n0), (t1, n1) = samples[max(first - 1, 0)], samples[-1]
    if t1 - t0 < 1.0:
        raise RuntimeError(f"{total:,} events are too few to time (under 1 s): use more --events")
    return (n1 - n0) / (t1 - t0)


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; 0 where absent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rate_and_cpu(worker: WorkerProcess, total: int) -> tuple[float, float]:
    """Events/s, and the worker's CPU µs per event over the run (the less noisy figure:
    the broker and this process share the machine's cores, which moves the rate more)."""
    before = _cpu_seconds(worker.pid)
    rate = _rate(worker, total, EVENTS_PROCESSED)
    return rate, (_cpu_seconds(worker.pid) - before) / total * 1e6


def _item_records(worker: WorkerProcess) -> float:
    """Item records the worker's item processor wrote (each replica installs every one)."""
    return metrics.total(worker.metrics_text(), "ecomstream_changelog_records_total", table="items")


def _worker(
    work: Path,
    bootstrap: str,
    prefix: str,
    module: str = "streams",
    commit_interval_ms: int | None = None,
    store: str = "memory://",
    delivery: str = "immediate",
    **extra: str,
) -> WorkerProcess:
    settings = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "app_id": f"bench-{uuid.uuid4().hex[:6]}",
        "store": store,
        "score_reviews": "false",
        "recommendation_delivery": delivery,
        **extra,
    }
    if commit_interval_ms is not None:
        settings["commit_interval_ms"] = str(commit_interval_ms)
    worker = WorkerProcess(
        work / f"w-{uuid.uuid4().hex[:6]}",
        web_port=find_free_port(),
        settings=settings,
        loglevel="warn",
        module=module,
    )
    worker.start(timeout=180)
    return worker


@contextlib.contextmanager
def _fresh_broker(data_dir: Path) -> Iterator[str]:
    """A new broker per round: each round measures the worker, not what earlier
    rounds left behind on a broker that shares the machine's two cores.

    History: on one broker, each round ran slower than the one before (default
    worker 15,104 → 12,437 → 9,650 events/s, 2026-11-30). The cause was the
    worker's, not the broker's: internal topics were named by topic prefix only, so
    every variant (a new ``app_id`` on the same prefix) also consumed the item
    deltas of every worker before it. They are namespaced by app id now
    (``Settings.internal_topic``)."""
    broker = KafkaBroker(data_dir, port=find_free_port(), controller_port=find_free_port())
    try:
        yield broker.start()
    finally:
        broker.stop()


@contextlib.contextmanager
def _running(work: Path, bootstrap: str, **options: Any) -> Iterator[WorkerProcess]:
    worker = _worker(work, bootstrap, PREFIX, **options)
    try:
        yield worker
    finally:
        worker.stop()


def _updates(worker: WorkerProcess) -> float:
    """Recommendation updates the worker emitted (rankings it computed)."""
    return metrics.total(worker.metrics_text(), "ecomstream_recommendation_updates_total")


class _Arrivals(threading.Thread):
    """A downstream reader (``read_committed``) noting when each record arrives (epoch ms),
    with the record's create time (when the worker's producer took it)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.arrived: list[tuple[int, int, bytes]] = []
        self.ready = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        asyncio.run(self._read())

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            parts = await partitions_of(self.bootstrap, self.topic)
            consumer.assign([TopicPartition(self.topic, p) for p in parts])
            await consumer.seek_to_beginning()
            self.ready.set()
            while not self.done.is_set():
                batch = await consumer.getmany(timeout_ms=50)
                now = int(time.time() * 1000)
                self.arrived += [
                    (now, r.timestamp, r.value or b"") for rs in batch.values() for r in rs
                ]
        finally:
            await consumer.stop()


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """No garbage collection in this process meanwhile (see the module docstring)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def produce_paced(work: Path, bootstrap: str, prefix: str, rate: float, events: int) -> RunSummary:
    """Simulator events (seed 5, 20,000 users) to ``prefix``-named topics at ``rate``/s."""
    config = SimConfig(seed=5, users=20_000, events=events, duration_s=None)
    return asyncio.run(run_to_kafka(config, bootstrap_servers=bootstrap, rate=rate,
                                    topic_name=lambda n: prefix + n,
                                    truth_path=work / f"{prefix}truth.json"))  # fmt: skip


def _latency(
    work: Path,
    bootstrap: str,
    rate: float,
    seconds: float,
    commit_interval_ms: int,
    delivery: str,
) -> dict[str, float]:
    prefix = f"lat{uuid.uuid4().hex[:4]}-"
    worker = _worker(
        work, bootstrap, prefix, commit_interval_ms=commit_interval_ms, delivery=delivery
    )
    reader = _Arrivals(bootstrap, prefix + "recommendation-updates")
    reader.start()
    try:
        if not reader.ready.wait(60):
            raise RuntimeError("the update reader did not start")
        with _collector_off():
            summary = produce_paced(work, bootstrap, prefix, rate, int(rate * seconds))
            wait_for(
                lambda: (
                    metrics.total(worker.metrics_text(), "ecomstream_events_processed_total")
                    >= summary.events
                ),
                300,
                0.5,
            )
        produced: dict[str, int] = {}
        for topic in ("clicks", "purchases"):
            for r in asyncio.run(consume_all(bootstrap, prefix + topic, timeout=120)):
                produced[orjson.loads(r.value or b"{}")["event_id"]] = r.timestamp
        updates = asyncio.run(consume_all(bootstrap, prefix + "recommendation-updates", 120))
        wait_for(lambda: len(reader.arrived) >= len(updates), 60, 0.1, description="arrivals")
    finally:
        reader.done.set()
        worker.stop()
        reader.join(30)
        # Each run's ~80 partitions would stay on the broker: the later runs were slower
        # (transactional p99 164 → 416 → 494 ms over rounds, 2026-11-30 02:29).
        asyncio.run(delete_topics(bootstrap, asyncio.run(topics_with_prefix(bootstrap, prefix))))
    # An update id seen twice (at-least-once) counts once: (end to end, inside the worker).
    first: dict[str, tuple[int, int]] = {}
    for arrived, created, value in reader.arrived:
        u = orjson.loads(value)
        if (event_ts := produced.get(u.get("trigger_event_id"))) is not None:
            first.setdefault(u["update_id"], (arrived - event_ts, created - event_ts))
    latencies = sorted(end for end, _ in first.values())
    q = statistics.quantiles(latencies, n=100)
    inside = statistics.quantiles([worker for _, worker in first.values()], n=100)
    return {
        "updates": len(latencies),
        "p50_ms": q[49],
        "p99_ms": q[98],
        "max_ms": latencies[-1],
        "worker_p99_ms": inside[98],
    }


def run(
    n_events: int = 200_000,
    repeats: int = 3,
    naive_events: int = 30_000,
    commit_intervals: Sequence[int] = (),
    latency_seconds: float = 20.0,
) -> Path:
    """``commit_intervals``: ms, default ``(Settings default, 50, 20)`` minus duplicates;
    ``repeats`` rounds of the throughput variants, then of the latency runs."""
    default_ms = Settings.model_fields["commit_interval_ms"].default
    load_start = os.getloadavg()[0]  # the machine is shared: say how busy it was
    intervals = list(dict.fromkeys([default_ms, *(commit_intervals or (100, 50, 20))]))
    raw = Variant("aiokafka raw consume + orjson.loads (ceiling)", "events/s")
    full = {
        ms: Variant(
            "worker: behaviour + item processors (profiles, changelog, recommendations, "
            f"item deltas; exactly-once), commit interval {ms} ms",
            "events/s",
            note="the default" if ms == default_ms else "",
        )
        for ms in intervals
    }
    rocks = Variant(
        "worker as above with rocksdb:// tables (the production default), "
        f"commit interval {default_ms} ms",
        "events/s",
        note="RocksDB, 25,000 decoded keys cached per table partition",
    )
    items_ms = default_ms
    items_fast = Variant(
        f"worker as the default, with the item processor committing every {items_ms} ms like "
        "the behaviour one (ECOMSTREAM_ITEMS_COMMIT_INTERVAL_MS; default "
        f"{Settings.model_fields['items_commit_interval_ms'].default})",
        "events/s",
    )
    python_rank = Variant(
        "worker as the default, with the Python replica and ranking (ECOMSTREAM_NATIVE=off; "
        "the default uses native/, the same lists)",
        "events/s",
    )
    debounce_s = 600
    slow = Variant(
        f"worker as the default, with a {debounce_s} s per-user debounce "
        f"(ECOMSTREAM_PROFILE_DEBOUNCE_S; default {DEFAULT_PROFILE_CONFIG.debounce_s:.0f})",
        "events/s",
    )
    updates: dict[str, list[float]] = {"default": [], "slow": []}
    naive = Variant(
        "naive Faust agent, one event and one table write at a time (same logic)",
        "events/s",
    )
    cpu_us: dict[str, list[float]] = defaultdict(list)  # variant name -> per round
    item_records: dict[str, list[float]] = defaultdict(list)
    paced = [("immediate", default_ms), *(("transactional", ms) for ms in intervals)]
    latencies: dict[tuple[str, int], list[dict[str, float]]] = {v: [] for v in paced}
    with tempfile.TemporaryDirectory(prefix="ecomstream-bench-") as tmp:
        work = Path(tmp)
        for r in tqdm(range(repeats), desc="profile path rounds"):
            with _fresh_broker(work / f"kafka-{r}") as bootstrap:
                total = asyncio.run(_produce(bootstrap, n_events, bad_every=10**9))
                naive_events = min(naive_events, total)
                raw.runs.append(asyncio.run(_consume(bootstrap, total, validate=False)))
                # A new broker's JVM is cold (the first paced run on one was slow): a
                # discarded worker run first, so that no variant pays for the warm-up.
                with _running(work, bootstrap) as worker:
                    _rate(worker, total, EVENTS_PROCESSED)
                # Workers in a rotated order: on 2026-11-30 the variant run first after
                # the warm-up was the slowest in two rounds of three; rotation spreads
                # whatever a position costs over the variants instead of pinning it to one.
                workers = [
                    *(
                        (
                            variant,
                            "default" if ms == default_ms else None,
                            {"commit_interval_ms": ms},
                        )
                        for ms, variant in full.items()
                    ),
                    (items_fast, None, {"items_commit_interval_ms": str(items_ms)}),
                    (python_rank, None, {"native": "off"}),
                    (slow, "slow", {"profile_debounce_s": str(debounce_s)}),
                    (rocks, None, {"store": "rocksdb://"}),
                    (naive, None, {"module": "benchmarks.naive_faust"}),
                ]
                for variant, counted, options in workers[r:] + workers[:r]:
                    events = naive_events if variant is naive else total
                    with _running(work, bootstrap, **options) as worker:
                        rate, cpu = _rate_and_cpu(worker, events)
                        variant.runs.append(rate)
                        cpu_us[variant.name].append(cpu)
                        if counted:
                            updates[counted].append(_updates(worker))
                        if variant is items_fast or counted == "default":
                            item_records[variant.name].append(_item_records(worker))
        with _fresh_broker(work / "kafka-latency") as bootstrap:
            # The first paced run on a new broker is slow (JVM warm-up): run one, discard it.
            _latency(work, bootstrap, 2_000, latency_seconds, default_ms, "immediate")
            for _ in tqdm(range(repeats), desc="latency rounds"):
                for delivery, ms in paced:  # interleaved: the variants share the machine's noise
                    latencies[delivery, ms].append(
                        _latency(work, bootstrap, 2_000, latency_seconds, ms, delivery)
                    )
    naive.note = f"first {naive_events:,} events of the same topics"
    full[default_ms].note += f"; {statistics.median(updates['default']):,.0f} updates"
    slow.note = f"{statistics.median(updates['slow']):,.0f} updates"
    for variant in (full[default_ms], items_fast):
        written = f"{statistics.median(item_records[variant.name]):,.0f} item records written"
        variant.note = f"{variant.note}; {written}" if variant.note else written
    for variant in [*full.values(), items_fast, python_rank, rocks, slow, naive]:
        per_round = cpu_us[variant.name]
        if per_round and max(per_round) > 0:
            cpu_note = (
                f"worker CPU {statistics.median(per_round):.1f} µs/event "
                f"({'/'.join(f'{c:.1f}' for c in per_round)})"
            )
            variant.note = f"{variant.note}; {cpu_note}" if variant.note else cpu_note
    lat = []
    for (delivery, ms), runs in latencies.items():

        def runs_of(key: str, runs: list[dict[str, float]] = runs) -> str:
            return "/".join(f"{r[key]:.0f}" for r in runs)

        lat.append(
            Variant(
                "latency event produced → recommendation update read (read_committed) "
                f"at 2,000 events/s, p99, {delivery} updates, commit interval {ms} ms",
                "ms",
                runs=[r["p99_ms"] for r in runs],
                note=("the default; " if delivery == "immediate" else "")
                + f"p50 {runs_of('p50_ms')} ms, max {runs_of('max_ms')} ms, "
                f"p99 until the worker's producer took the update {runs_of('worker_p99_ms')} ms, "
                f"{sum(r['updates'] for r in runs):,.0f} updates",
            )
        )
    return write(
        "profiles_path",
        "Profile and recommendation path: events/s on one worker, and latency",
        [raw, *full.values(), items_fast, python_rank, rocks, slow, naive, *lat],
        {"events": total, "partitions": PARTITIONS, "users": 20_000,
         "latency_run_s": latency_seconds, "kafka": "local KRaft broker, same machine",
         "load_avg_1m_start_end": f"{load_start:.1f}/{os.getloadavg()[0]:.1f}"},
    )  # fmt: skip
