"""When full garbage collections run (ecomstream.processing.collector)."""

from __future__ import annotations

import gc
import weakref

from ecomstream import metrics
from ecomstream.processing.collector import FullCollections


def test_install_stops_automatic_full_collections_and_uninstall_restores_them() -> None:
    before = gc.get_threshold()
    policy = FullCollections()
    policy.install()
    try:
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert full > 10**8
        assert gc.get_freeze_count() > 0
    finally:
        policy.uninstall()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_busy_worker_collects_once_per_interval_idle_one_once_after_work() -> None:
    policy = FullCollections(max_interval_s=60.0)
    policy.collected(now=0.0, events=0)
    busy = [policy.due(now=float(t), events=1000 * t) for t in range(1, 130)]
    assert [t for t, due in enumerate(busy, start=1) if due] == list(range(60, 130))
    policy.collected(now=60.0, events=60_000)
    assert not policy.due(now=61.0, events=61_000)
    assert policy.due(now=62.0, events=61_000)  # no event for a tick: collect now
    policy.collected(now=62.0, events=61_000)
    assert not any(policy.due(now=62.0 + t, events=61_000) for t in range(1, 200))


def test_tick_runs_a_collection_that_frees_cycles_and_records_its_pause() -> None:
    class Node:
        other: object = None

    policy = FullCollections(max_interval_s=0.0)
    seen = metrics.total(metrics.exposition().decode(), "ecomstream_full_gc_seconds_count")
    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    del a, b
    assert policy.tick(events=1) is not None
    assert ref() is None
    assert (
        metrics.total(metrics.exposition().decode(), "ecomstream_full_gc_seconds_count") == seen + 1
    )
