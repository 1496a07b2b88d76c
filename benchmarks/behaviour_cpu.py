"""CPU cost per event of the worker's handlers, offline (no broker, no Faust).

Times are CPU time of this process (``time.process_time``), which other work on a
shared machine disturbs less than wall time.

The same simulator events as ``benchmarks.profiles_path`` (seed 1, 20,000 users),
encoded as the producers encode them, go through what one worker runs per batch:
:class:`~ecomstream.dataflows.BehaviourFlow` (validation, profiles,
recommendations, item deltas), the commit snapshot (each dirty profile encoded for
the changelog), :class:`~ecomstream.dataflows.ItemFlow` over the batch's item deltas
(plus its snapshot), and the item replica decoding the items table's changelog
records. Kafka client costs (fetch, decode, produce) are not included: this is the
handlers' share of the worker's time, to profile and compare code changes.

    .venv/bin/python -m benchmarks.behaviour_cpu --events 100000 [--profile] [--native off]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeAlias

from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from ecomstream.dataflows import BehaviourFlow, ItemFlow, TopicNames
from ecomstream.dataflows.items import ITEMS
from ecomstream.processing import BatchContext, OutputRecord, PartitionStore, TableSpec
from ecomstream.processing.collector import FullCollections
from ecomstream.processing.commit import CommitPayload, snapshot
from ecomstream.recommend.native import Choice, replica_index
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.shop import generate

PARTITIONS = 4
NAMES = TopicNames(
    clicks="clicks",
    purchases="purchases",
    reviews="reviews",
    review_scores="review-scores",
    sentiment_alerts="sentiment-alerts",
    recommendation_updates="recommendation-updates",
    dead_letters="dead-letters",
    item_deltas="item-deltas",
    review_scores_by_user="review-scores-by-user",
)
Rec: TypeAlias = ConsumerRecord[bytes, bytes]


def _partition(key: bytes) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def records(n_events: int, seed: int = 1, users: int = 20_000) -> list[list[Rec]]:
    """Per partition, the input records in produced order."""
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    out: list[list[Rec]] = [[] for _ in range(PARTITIONS)]
    config = SimConfig(seed=seed, users=users, events=n_events, duration_s=None)
    for sim in generate(config):
        key = sim.key.encode()
        value = sim.event.to_json()
        p = _partition(key)
        offset = offsets[sim.topic, p]
        offsets[sim.topic, p] = offset + 1
        out[p].append(
            ConsumerRecord(sim.topic, p, offset, 0, 0, key, value, None, len(key), len(value), [])
        )
    return out


class Worker:
    """The handlers of one worker with in-memory stores, and the time spent in each."""

    def __init__(self, native: Choice = "auto") -> None:
        self.replica = replica_index(choice=native)
        self.behaviour = BehaviourFlow(NAMES, self.replica)
        self.items = ItemFlow(NAMES)
        self.b_specs: dict[str, TableSpec[Any]] = {t.name: t for t in self.behaviour.tables}
        self.i_specs: dict[str, TableSpec[Any]] = {t.name: t for t in self.items.tables}
        self.b_stores = {
            p: {t.name: PartitionStore[Any]() for t in self.behaviour.tables}
            for p in range(PARTITIONS)
        }
        self.i_stores = {
            p: {t.name: PartitionStore[Any]() for t in self.items.tables} for p in range(PARTITIONS)
        }
        self.seconds: dict[str, float] = defaultdict(float)
        self.outputs: dict[str, int] = defaultdict(int)
        self.digest = hashlib.blake2b(digest_size=16)  # of every output, in order
        # Of every commit's changelog records, sorted: a commit writes dirty keys in set
        # order, which varies with the process's string hash seed.
        self.changelog = hashlib.blake2b(digest_size=16)

    def _run(
        self, name: str, flow: Any, specs: Any, stores: Any, by_p: dict[int, list[Rec]]
    ) -> tuple[list[OutputRecord], CommitPayload]:
        outputs: list[OutputRecord] = []
        t0 = time.process_time()
        for p, recs in by_p.items():
            flow(BatchContext(p, specs, stores[p], outputs), recs)
        t1 = time.process_time()
        changelogs = {s: s for s in specs}
        payload = snapshot(changelogs, specs, stores, [], {}, {})
        t2 = time.process_time()
        self.seconds[name] += t1 - t0
        self.seconds[name + " snapshot"] += t2 - t1
        for o in outputs:
            self.outputs[o.topic] += 1
            self.digest.update(b"%s\x1f%s\x1f%s\x1e" % (o.topic.encode(), o.key, o.value))
        for tp, records in sorted(payload.changelog.items()):
            for key, value in sorted(records, key=lambda kv: kv[0]):
                self.changelog.update(b"%s\x1f%s\x1f%s\x1e" % (str(tp).encode(), key, value or b""))
        return outputs, payload

    def batch(self, by_p: dict[int, list[Rec]]) -> None:
        outputs, _ = self._run("behaviour", self.behaviour, self.b_specs, self.b_stores, by_p)
        deltas: dict[int, list[Rec]] = defaultdict(list)
        for i, o in enumerate(outputs):
            if o.topic == NAMES.item_deltas and o.key is not None and o.value is not None:
                p = _partition(o.key)
                deltas[p].append(
                    ConsumerRecord(o.topic, p, i, 0, 0, o.key, o.value, None, 0, 0, [])
                )
        _, payload = self._run("items", self.items, self.i_specs, self.i_stores, deltas)
        t0 = time.process_time()
        for tp, records in payload.changelog.items():
            if tp.topic == ITEMS.name:  # the replica reads the items table's changelog
                for _, value in records:
                    if value is not None:
                        self.replica.put_encoded(value)
        self.seconds["replica"] += time.process_time() - t0


def run(partitions: Sequence[list[Rec]], per_partition: int, native: Choice = "auto") -> Worker:
    # The worker's collector policy (no automatic full collections; see
    # ecomstream.processing.collector). It also freezes the input records, which are this
    # harness's, not worker state, so no scan of them is billed to a handler.
    collections = FullCollections()
    collections.install()
    try:
        return _run_batches(partitions, per_partition, native)
    finally:
        collections.uninstall()


def _run_batches(partitions: Sequence[list[Rec]], per_partition: int, native: Choice) -> Worker:
    worker = Worker(native)
    longest = max(len(p) for p in partitions)
    for start in range(0, longest, per_partition):
        by_p = {
            p: recs[start : start + per_partition]
            for p, recs in enumerate(partitions)
            if recs[start : start + per_partition]
        }
        worker.batch(by_p)
    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1250, help="records per partition per batch")
    parser.add_argument("--profile", action="store_true", help="cProfile, top 40 by tottime")
    parser.add_argument(
        "--native",
        choices=("auto", "on", "off"),
        default="auto",
        help="the replica and ranking in Rust (on), in Python (off), or Rust when built (auto)",
    )
    args = parser.parse_args()
    parts = records(args.events)
    total = sum(len(p) for p in parts)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
    started = time.process_time()
    worker = run(parts, args.batch, args.native)
    elapsed = time.process_time() - started
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    print(
        f"{type(worker.replica).__name__}: {total:,} events in {elapsed:.2f} CPU s: "
        f"{total / elapsed:,.0f} events per CPU second (handlers only)"
    )
    for name, s in sorted(worker.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:20s} {s:6.2f} CPU s  {1e6 * s / total:6.1f} µs/event")
    print("  outputs: " + ", ".join(f"{k} {v:,}" for k, v in sorted(worker.outputs.items())))
    print(f"  digest of all outputs: {worker.digest.hexdigest()}")
    print(f"  digest of all changelog records: {worker.changelog.hexdigest()}")


if __name__ == "__main__":
    main()
