"""A real worker, scraped by a real Prometheus during a simulator run (observability tests)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ecomstream import metrics
from ecomstream.launchers.process import find_free_port, wait_for
from ecomstream.launchers.triton import TritonServer
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.runner import run_to_kafka
from ecomstream.testing.kafka import produce_raw

PREFIX = "obs-"
HOSTILE = [("clicks", b"{oops", "invalid_json"), ("purchases", b"", "empty"),
           ("reviews", b'{"rating": "five"}', "missing_field")] * 3  # fmt: skip


@dataclass
class RunningWorker:
    worker: WorkerProcess
    produced: dict[str, int]  # input topic -> messages sent, valid or not
    valid: dict[str, int]  # input topic -> valid events sent
    dead_letters: dict[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def metrics_url(self) -> str:
        return self.worker.metrics_url


@pytest.fixture(scope="session")
def running_worker(
    kafka_broker: Any, triton_server: TritonServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningWorker]:
    """One worker that has consumed a 30-minute simulator run plus a few hostile messages."""
    bootstrap = kafka_broker.bootstrap_servers
    worker = WorkerProcess(
        tmp_path_factory.mktemp("running_worker"),
        web_port=find_free_port(),
        settings={
            "bootstrap_servers": bootstrap,
            "topic_prefix": PREFIX,
            "store": "memory://",
            "triton_grpc_url": triton_server.grpc_url,
        },
    )
    worker.start()
    try:
        config = SimConfig(seed=3, users=800, duration_s=1800, random_incidents=1)
        truth = tmp_path_factory.mktemp("sim") / "truth.json"
        summary = asyncio.run(
            run_to_kafka(config, bootstrap_servers=bootstrap, topic_name=lambda n: PREFIX + n,
                         truth_path=truth)
        )  # fmt: skip
        for topic in {t for t, _, _ in HOSTILE}:
            records = [(b"u-hostile", v) for t, v, _ in HOSTILE if t == topic]
            asyncio.run(produce_raw(bootstrap, PREFIX + topic, records))
        hostile = Counter(t for t, _, _ in HOSTILE)
        produced = {t: n + hostile[t] for t, n in summary.by_topic.items()}
        total = sum(produced.values())
        wait_for(
            lambda: (
                metrics.total(worker.metrics_text(), "ecomstream_events_consumed_total") >= total
            ),
            120,
            0.5,
            description="worker to consume the run",
        )
        yield RunningWorker(
            worker,
            produced=produced,
            valid=dict(summary.by_topic),
            dead_letters=dict(Counter(reason for _, _, reason in HOSTILE)),
        )
    finally:
        worker.stop()
