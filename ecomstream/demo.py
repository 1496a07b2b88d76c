"""``make demo``: the whole pipeline on local defaults, with a live summary.

Trains and exports the quick sentiment model if none is installed, starts a
real Kafka broker, a real Triton serving the model, one worker and a real
Prometheus scraping both, runs the simulator for a short scenario with an
incident (plus a few hostile messages so dead letters show up), prints what
flows through each topic every few seconds, and stops everything it started,
also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ecomstream import metrics
from ecomstream.alerts.config import QUICK_MODEL_PRESET
from ecomstream.events import INPUT_TOPICS
from ecomstream.inference.repository import installed_versions
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.launchers.process import find_free_port, port_is_free, wait_for_async
from ecomstream.launchers.prometheus import PrometheusServer
from ecomstream.launchers.triton import TritonServer
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.runner import RunSummary, run_to_kafka
from ecomstream.topics import (
    read_topic,
    topic_sizes,
)

HOSTILE: tuple[tuple[str, bytes | None], ...] = (
    ("clicks", b'{"event_id": "x1", "user_id": '),
    ("clicks", b""),
    ("purchases", b'{"event_id":"x2","order_id":"o","user_id":"u","item_id":"i",'
                  b'"category":"c","price":"free","quantity":1,"ts":1767225600000}'),
    ("reviews", b'{"text": "\xff\xfe broken bytes"}'),
    ("reviews", None),
)  # fmt: skip


# The demo scores with the quick model: its label noise needs the detector's quick-model
# preset (scorer error rates + a lower z_fire; figures in QUICK_MODEL_PRESET's docstring).
DEMO_ALERT_SETTINGS = {f"alert_{name}": value for name, value in QUICK_MODEL_PRESET.items()}


@dataclass
class DemoPlan:
    """What the demo runs; the defaults take about a minute on 2 cores."""

    workdir: Path = Path("var/demo")
    seed: int = 7
    users: int = 20_000
    items: int = 600
    duration_s: float = 2 * 3600  # simulated event time
    rate: float = 8_000  # events/s produced
    random_incidents: int = 2
    kafka_port: int = 9092
    web_port: int = 6066
    triton_ports: tuple[int, int, int] = (8000, 8001, 8002)
    prometheus_port: int = 9090
    triton_repo: Path = Path("serving/triton_repo")
    model_name: str = "review_sentiment"
    refresh_s: float = 3.0


@dataclass
class Snapshot:
    """Counts the summary prints: topic end offsets and the worker's own metrics."""

    topic_counts: dict[str, int] = field(default_factory=dict)
    consumed: float = 0.0
    processed: dict[str, float] = field(default_factory=dict)
    dead_letters: dict[str, float] = field(default_factory=dict)
    labels: dict[str, float] = field(default_factory=dict)
    alerts: float = 0.0
    updates: float = 0.0

    def render(self, elapsed: float) -> str:
        inputs = " ".join(f"{t}={self.topic_counts.get(t, 0):,}" for t in INPUT_TOPICS)
        dead_total = int(sum(self.dead_letters.values()))
        outputs = (
            f"review-scores={int(sum(self.labels.values())):,} "
            f"sentiment-alerts={int(self.alerts):,} "
            f"recommendation-updates={int(self.updates):,} dead-letters={dead_total:,}"
        )
        valid = " ".join(f"{t}={int(n):,}" for t, n in sorted(self.processed.items()))
        dead = ", ".join(f"{r}={int(n)}" for r, n in sorted(self.dead_letters.items())) or "none"
        labels = ", ".join(f"{k}={int(v):,}" for k, v in sorted(self.labels.items())) or "-"
        return (
            f"[{elapsed:6.1f}s] in (messages): {inputs}\n"
            f"          worker consumed={int(self.consumed):,} valid: {valid or '-'}\n"
            f"          dead letters by reason: {dead}\n"
            f"          reviews scored by Triton: {labels}\n"
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
    into.labels = {
        dict(k)["label"]: v
        for k, v in metrics.sample_values(text, "ecomstream_reviews_scored_total").items()
    }
    into.alerts = metrics.total(text, "ecomstream_sentiment_alerts_total")
    into.updates = metrics.total(text, "ecomstream_recommendation_updates_total")


async def _send_hostile(bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, value in HOSTILE:
            await producer.send_and_wait(topic, value=value, key=b"demo-hostile")
    finally:
        await producer.stop()


def ensure_model(plan: DemoPlan, say: Callable[[str], None]) -> None:
    """Train and export the quick model into the Triton repository unless one is installed."""
    if installed_versions(plan.triton_repo, plan.model_name):
        say(f"sentiment model: installed in {plan.triton_repo / plan.model_name}")
        return
    say("no sentiment model installed: training the quick profile (a few minutes)...")
    for args in (
        ["model", "train", "--profile", "quick"],
        ["model", "export", "--triton-repo", str(plan.triton_repo), "--version", "1"],
    ):
        subprocess.run([sys.executable, "-m", "ecomstream", *args], check=True)


async def _run(plan: DemoPlan, say: Callable[[str], None]) -> Snapshot:
    if plan.workdir.exists():
        shutil.rmtree(plan.workdir)  # each demo starts from empty topics and state
    ensure_model(plan, say)
    with contextlib.ExitStack() as started:  # stops everything, in reverse, on any exit
        http, grpc, triton_metrics = (_port(p) for p in plan.triton_ports)
        triton = TritonServer(
            plan.triton_repo.resolve(), plan.workdir / "triton",
            http_port=http, grpc_port=grpc, metrics_port=triton_metrics,
        )  # fmt: skip
        say("starting Triton Inference Server...")
        started.callback(triton.stop)
        triton.start()
        say(f"  Triton ready: gRPC {triton.grpc_url}, metrics {triton.metrics_url}")

        kafka = KafkaBroker(
            plan.workdir / "kafka", port=_port(plan.kafka_port), controller_port=find_free_port()
        )
        say("starting Apache Kafka (KRaft, single node)...")
        started.callback(kafka.stop)
        bootstrap = kafka.start()
        say(f"  Kafka ready at {bootstrap}")

        worker = WorkerProcess(
            plan.workdir / "worker",
            web_port=_port(plan.web_port),
            settings={"bootstrap_servers": bootstrap, "store": "rocksdb://",
                      "triton_grpc_url": triton.grpc_url, **DEMO_ALERT_SETTINGS},
        )  # fmt: skip
        say("starting the ecomstream worker...")
        started.callback(worker.stop)
        worker.start()
        say(f"  worker ready: metrics {worker.metrics_url}, log {worker.log_path}")

        prometheus = PrometheusServer(
            plan.workdir / "prometheus",
            {"ecomstream-worker": [f"127.0.0.1:{worker.web_port}"],
             "triton": [f"127.0.0.1:{triton_metrics}"]},
            port=_port(plan.prometheus_port),
            rule_files=sorted(Path("prometheus/rules").resolve().glob("*.yml")),
        )  # fmt: skip
        started.callback(prometheus.stop)
        prometheus.start()
        say(f"  Prometheus at {prometheus.url}: try sum by (topic) "
            "(rate(ecomstream_events_processed_total[1m]))")  # fmt: skip
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
    try:
        await _send_hostile(bootstrap)
        while not simulation.done():
            await asyncio.wait({simulation}, timeout=plan.refresh_s)
            snap.topic_counts = await topic_sizes(bootstrap, INPUT_TOPICS)
            snapshot_worker(worker, snap)
            say(snap.render(time.monotonic() - started))
    finally:
        # Interrupted (Ctrl-C, SIGTERM): the interruption may have landed inside the
        # simulation's own step. Stop it, and take its outcome so asyncio does not log
        # it as "never retrieved" on the way out.
        if simulation.done():
            if not simulation.cancelled():
                simulation.exception()
        else:
            simulation.cancel()
    summary = simulation.result()
    produced = summary.events + len(HOSTILE)
    say(summary.line())

    async def drained() -> bool:
        snapshot_worker(worker, snap)
        scored = sum(snap.labels.values())
        return snap.consumed >= produced and scored >= snap.processed.get("reviews", 0)

    await wait_for_async(drained, timeout=300, interval=0.5, description="worker to drain")
    snap.topic_counts = await topic_sizes(bootstrap, INPUT_TOPICS)
    say("\n=== summary ===")
    say(snap.render(time.monotonic() - started))
    say(f"ground truth (incidents, next purchases): {truth}")
    incidents = orjson.loads(truth.read_bytes()).get("incidents", [])
    for incident in incidents:
        say(f"  injected incident: item {incident['item_id']} from ts {incident['start_ts']}")
    for alert in map(orjson.loads, await read_topic(bootstrap, "sentiment-alerts")):
        counts, baseline = alert["counts"], alert["baseline"]["negative_share"]
        say(
            f"  sentiment alert: {alert['state']} {alert['severity']} item {alert['item_id']} "
            f"({counts['negative']}/{counts['reviews']} negative, baseline {baseline:.2f})"
        )
    updates = await read_topic(bootstrap, "recommendation-updates")
    if updates:
        last = orjson.loads(updates[-1])
        say(f"  latest of {len(updates):,} recommendation updates, for {last['user_id']}:")
        for item in last["items"][:5]:
            say(f"    {item['item_id']:>8} {item['score']:.3f}  {'; '.join(item['reasons'])}")
    return snap


def run_demo(plan: DemoPlan | None = None, say: Callable[[str], None] = print) -> Snapshot:
    """Run the demo to its summary; everything started is stopped on exit or Ctrl-C."""
    return asyncio.run(_run(plan or DemoPlan(), say))
