"""Pytest fixtures: real ``streams`` workers against the session's real Kafka broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecomstream.launchers.process import find_free_port
from ecomstream.launchers.worker import WorkerProcess

WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def topic_prefix() -> str:
    """A fresh namespace per test: topics, consumer group and app id never collide."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def worker_factory(
    kafka_broker: object, tmp_path: Path, topic_prefix: str
) -> Iterator[WorkerFactory]:
    """Start workers on the test's namespace; every one is stopped by PID at teardown."""
    started: list[WorkerProcess] = []

    def start(name: str = "w0", **settings: str) -> WorkerProcess:
        merged = {
            "bootstrap_servers": kafka_broker.bootstrap_servers,  # type: ignore[attr-defined]
            "topic_prefix": topic_prefix,
            "store": "memory://",
            **settings,
        }
        worker = WorkerProcess(tmp_path / name, web_port=find_free_port(), settings=merged)
        started.append(worker)
        worker.start()
        return worker

    yield start
    for worker in started:
        worker.stop()
