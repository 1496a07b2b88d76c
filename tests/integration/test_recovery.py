"""Profiles survive a clean stop and a kill -9: recovered from their changelog, equal to an
uninterrupted run over the same input (exactly-once: no event counted twice)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from ecomstream import metrics
from ecomstream.launchers.process import find_free_port, wait_for, wait_for_async
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.profiles.config import ProfileConfig
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.shop import generate
from ecomstream.testing.kafka import consume_all, group_caught_up, produce_raw

pytestmark = pytest.mark.integration

INPUTS = ("clicks", "purchases", "reviews")
# Debounce bookkeeping ("e") depends on how events fall into batches; the rest may not.
BATCH_DEPENDENT = ("e",)
HALF_LIFE_MS = ProfileConfig().interest_half_life_ms


def simulated(n: int) -> dict[str, list[tuple[bytes | None, bytes | None]]]:
    by_topic: dict[str, list[tuple[bytes | None, bytes | None]]] = {t: [] for t in INPUTS}
    for sim in generate(SimConfig(seed=11, users=300, events=n, duration_s=None)):
        by_topic[sim.topic].append((sim.key.encode(), sim.event.to_json()))
    return by_topic


async def produce(bootstrap: str, prefix: str, by_topic: dict[str, list[Any]], part: slice) -> None:
    for topic, records in by_topic.items():
        await produce_raw(bootstrap, prefix + topic, records[part])


def comparable(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile with interests as values at its own clock ("t"), not relative to the
    landmark ("l") that forward decay moves whenever a batch needs it."""
    out = {k: v for k, v in profile.items() if k not in BATCH_DEPENDENT and k not in ("l", "c")}
    factor = 2.0 ** ((profile["l"] - profile["t"]) / HALF_LIFE_MS)
    out["c"] = {c: round(v * factor, 9) for c, v in profile.get("c", {}).items()}
    return out


async def profiles(bootstrap: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Latest profile per user from the behaviour processor's changelog (read_committed)."""
    topic = f"{prefix}ecomstream-behaviour-profiles-changelog"
    latest: dict[str, dict[str, Any]] = {}
    for r in await consume_all(bootstrap, topic, timeout=60):
        assert r.key is not None and r.value is not None
        value = orjson.loads(r.value)
        latest[r.key.decode()] = comparable(value)
    return latest


def start(tmp_path: Path, name: str, bootstrap: str, prefix: str) -> WorkerProcess:
    worker = WorkerProcess(
        tmp_path / name,
        web_port=find_free_port(),
        # The production store, with a cache far smaller than the users: most profiles
        # live encoded in RocksDB and are written back, read and recovered from there.
        settings={"bootstrap_servers": bootstrap, "topic_prefix": prefix,
                  "store": "rocksdb://", "table_cache_keys": "500", "score_reviews": "false"},
    )  # fmt: skip
    worker.start()
    return worker


async def test_profiles_after_clean_stop_and_kill_equal_an_uninterrupted_run(
    kafka_broker: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    reference, crashed = f"ref{uuid.uuid4().hex[:6]}-", f"crash{uuid.uuid4().hex[:6]}-"
    events = simulated(60_000)
    first, rest = slice(0, 10_000), slice(10_000, None)
    await produce(bootstrap, reference, events, slice(None))

    def group_done(prefix: str) -> Any:
        group = f"{prefix}ecomstream-behaviour"
        return lambda: group_caught_up(bootstrap, group, [prefix + t for t in INPUTS])

    ref = start(tmp_path, "ref", bootstrap, reference)
    try:
        await wait_for_async(group_done(reference), timeout=180, interval=0.5)
    finally:
        ref.stop()

    await produce(bootstrap, crashed, events, first)
    worker = start(tmp_path, "crash", bootstrap, crashed)
    try:
        await wait_for_async(group_done(crashed), timeout=180, interval=0.5)
        worker.stop()  # clean stop: commit, leave the group
        await produce(bootstrap, crashed, events, rest)
        worker.start()
        wait_for(
            lambda: metrics.total(worker.metrics_text(), "ecomstream_events_processed_total") > 0,
            120,
            0.02,
            description="processing the rest",
        )
        worker.kill()  # mid-stream, between commits
        worker.start()  # same instance id: fences the dead one's open transaction
        await wait_for_async(group_done(crashed), timeout=180, interval=0.5)
    finally:
        worker.stop()

    expected, recovered = await profiles(bootstrap, reference), await profiles(bootstrap, crashed)
    assert len(expected) > 250
    assert recovered.keys() == expected.keys()
    different = [u for u in expected if recovered[u] != expected[u]]
    detail = (
        {
            k: (expected[different[0]].get(k), recovered[different[0]].get(k))
            for k in expected[different[0]]
            if expected[different[0]].get(k) != recovered[different[0]].get(k)
        }
        if different
        else {}
    )
    assert not different, (len(different), detail)
