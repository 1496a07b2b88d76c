"""JSONL round trip, token-bucket pacing, and the Kafka runner against a recording sink."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from ecomstream.data.corpus import ReviewCorpus
from ecomstream.events import Event, decode_event
from ecomstream.simulator import SimConfig, generate, load_truth, read_jsonl, run_to_jsonl
from ecomstream.simulator.runner import run_to_kafka
from ecomstream.simulator.sinks import TokenBucket
from tests.unit.simulator.conftest import Run

CONFIG = SimConfig(seed=5, users=200, items=60, categories=8, duration_s=None, events=3_000)


def test_jsonl_round_trip(tmp_path: Path, small_run: Run, corpus: ReviewCorpus) -> None:
    out = tmp_path / "run.jsonl"
    summary = run_to_jsonl(small_run.config, out, tmp_path / "t.json", corpus=corpus)
    assert summary.events == len(small_run.events)
    records = list(read_jsonl(out))
    assert len(records) == len(small_run.events)
    for (topic, key, value), original in zip(records, small_run.events, strict=True):
        assert (topic, key) == (original.topic, original.key)
        assert decode_event(topic, value) == original.event
    first = orjson.loads(out.read_bytes().splitlines()[0])
    assert set(first) == {"topic", "key", "value"}
    assert load_truth(tmp_path / "t.json") == small_run.truth


def test_load_truth_refuses_other_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'{"format": "something else"}')
    with pytest.raises(ValueError, match="ground truth"):
        load_truth(path)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


async def test_token_bucket_paces_to_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100.0, burst=10.0, clock=clock, sleep=clock.sleep)
    for _ in range(1_010):
        await bucket.take()
    assert clock.now == pytest.approx(10.0)  # the first 10 are the burst, then 1000 at 100/s


async def test_token_bucket_refills_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100.0, burst=10.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await bucket.take()
    clock.now += 5.0  # idle: refills up to the burst, not beyond
    for _ in range(10):
        await bucket.take()
    assert clock.slept == 0.0
    await bucket.take()
    assert clock.slept == pytest.approx(0.01)


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def send(self, topic: str, key: str, event: Event) -> None:
        self.sent.append((topic, key, event.to_json()))

    async def flush(self) -> None:
        self.calls.append("flush")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_kafka_runner_sends_every_event_in_order(
    tmp_path: Path, corpus: ReviewCorpus
) -> None:
    sink = RecordingSink()
    summary = await run_to_kafka(
        CONFIG,
        bootstrap_servers="unused:9092",
        rate=10_000.0,
        truth_path=tmp_path / "truth.json",
        corpus=corpus,
        sink=sink,
    )
    expected = [(e.topic, e.key, e.event.to_json()) for e in generate(CONFIG, corpus)]
    assert sink.sent == expected
    assert sink.calls == ["start", "flush", "stop"]
    # A burst of 50 ms worth (500 events), then paced: 2500 events at 10k/s.
    assert summary.events == 3_000 and summary.seconds >= 0.24
    assert load_truth(tmp_path / "truth.json")["counts"]["total"] == 3_000


async def test_kafka_runner_writes_truth_when_interrupted(
    tmp_path: Path, corpus: ReviewCorpus
) -> None:
    class Failing(RecordingSink):
        async def send(self, topic: str, key: str, event: Event) -> None:
            if len(self.sent) == 100:
                raise ConnectionError("broker went away")
            await super().send(topic, key, event)

    sink = Failing()
    with pytest.raises(ConnectionError):
        await run_to_kafka(
            dataclasses.replace(CONFIG, events=500),
            bootstrap_servers="unused:9092",
            truth_path=tmp_path / "truth.json",
            corpus=corpus,
            sink=sink,
        )
    assert sink.calls == ["start", "stop"]
    assert (
        load_truth(tmp_path / "truth.json")["counts"]["total"] == 101
    )  # 100 sent + the failed one
