"""Micro-benchmark of the profile / recommendation logic in pure Python (no broker).

Events come from the shop simulator (or ``--jsonl``) and go through the same
functions the Faust handler calls, in batches of ``--batch`` events:

* ``update`` — :func:`process_batch` with profiles kept as objects, nothing encoded
  (the logic alone);
* ``cached`` — as the stream should run it: decoded profiles in a :class:`ProfileCache`,
  each touched profile encoded once per batch for the table/changelog;
* ``codec``  — no cache: every touched profile decoded from bytes and encoded back
  once per batch;
* ``items``  — ``cached`` plus the item owner's work: fold the batch's deltas into an
  :class:`ItemIndex`, encode each delta and each touched record once;
* ``rank``   — ``items`` plus one :func:`recommend` (and its JSON) per debounced
  trigger, reported per list and as the share of events that trigger one.

The first half of the events warms the state up; only the second half is timed.
Writes ``benchmarks/results/profiles.json`` and prints a markdown table.

    .venv/bin/python -m benchmarks.profiles --users 20000 --events 200000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from ecomstream.deadletters import SourcePosition
from ecomstream.events import INPUT_TOPICS, Rejection, decode_event
from ecomstream.ingest import Accepted
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.profiles.config import ProfileConfig
from ecomstream.profiles.profile import UserProfile
from ecomstream.recommend.items import ItemIndex, decode_item, encode_delta, encode_item
from ecomstream.recommend.pipeline import (
    DEFAULT_PIPELINE_CONFIG,
    PipelineConfig,
    ProfileCache,
    process_batch,
)
from ecomstream.recommend.recommender import recommend

RESULTS = Path(__file__).parent / "results" / "profiles.json"


def simulated(users: int, events: int, seed: int) -> list[Accepted]:
    from ecomstream.simulator.config import SimConfig
    from ecomstream.simulator.shop import generate

    out: list[Accepted] = []
    offsets: dict[str, int] = {}
    for sim in generate(SimConfig(seed=seed, users=users, events=events, duration_s=None)):
        offset = offsets.get(sim.topic, 0)
        offsets[sim.topic] = offset + 1
        out.append(Accepted(SourcePosition(sim.topic, 0, offset), sim.key.encode(), sim.event))
    return out


def from_jsonl(path: Path, limit: int) -> list[Accepted]:
    out: list[Accepted] = []
    with path.open("rb") as lines:
        for offset, line in enumerate(lines):
            record = orjson.loads(line)
            if record["topic"] not in INPUT_TOPICS:
                continue
            event = decode_event(record["topic"], orjson.dumps(record["value"]))
            if not isinstance(event, Rejection):
                out.append(Accepted(SourcePosition(record["topic"], 0, offset), None, event))
            if len(out) >= limit:
                break
    return out


def batches(events: Sequence[Accepted], size: int) -> list[Sequence[Accepted]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


MODES = ("update", "cached", "codec", "items", "rank")


def run(
    events: Sequence[Accepted], batch: int, mode: str, cfg: PipelineConfig = DEFAULT_PIPELINE_CONFIG
) -> dict[str, Any]:
    """One mode (module docstring); the first half of ``events`` warms up, the rest is timed."""
    half = len(events) // 2
    warm, timed = batches(events[:half], batch), batches(events[half:], batch)
    stored: dict[str, bytes] = {}
    cache = ProfileCache(maxsize=10**9)
    load = cache.loader(stored.get) if mode != "codec" else stored.get
    items = ItemIndex(cfg.items)
    triggers = ranks = 0
    rank_s = 0.0

    def one(chunk: Sequence[Accepted], measure: bool) -> None:
        nonlocal triggers, ranks, rank_s
        out = process_batch(chunk, load, cfg)
        if mode != "update":
            stored.update(out.encoded_profiles(cfg.profile))
        if mode != "codec":
            cache.store(out.profiles)
        for delta in out.item_deltas.values():
            record = items.apply_delta(delta)
            if mode in ("items", "rank"):
                encode_delta(delta)
                encode_item(record)
        if measure:
            triggers += len(out.triggers)
            if mode == "rank":
                t0 = time.perf_counter()
                for trig in out.triggers:
                    update = recommend(out.profiles[trig.user_id], items, trig.event_id, trig.ts)
                    update.to_json()
                    ranks += 1
                rank_s += time.perf_counter() - t0

    for chunk in warm:
        one(chunk, False)
    gc.collect()
    started, cpu_started = time.perf_counter(), time.process_time()
    for chunk in timed:
        one(chunk, True)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    n = sum(len(c) for c in timed)
    result: dict[str, Any] = {
        "mode": mode,
        "events": n,
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds),
        "cpu_seconds": round(cpu, 3),
        "events_per_cpu_s": round(n / cpu),
        "trigger_share": round(triggers / n, 4),
    }
    if mode == "rank":
        result["ranks"] = ranks
        result["ms_per_rank"] = round(1000 * rank_s / max(ranks, 1), 3)
        result["events_per_s_without_ranking"] = round(n / (seconds - rank_s))
    if mode == "items":
        blobs = [encode_item(r) for r in items.records.values()]
        sizes = sorted(len(b) for b in blobs)
        result["item_record_bytes"] = {
            "items": len(sizes),
            "median": statistics.median(sizes),
            "max": sizes[-1],
            "python_bytes_per_record": heap_bytes(blobs, decode_item),
        }
    if mode == "cached":
        sizes = sorted(len(b) for b in stored.values())
        result["profile_bytes"] = {
            "users": len(sizes),
            "median": statistics.median(sizes),
            "p90": sizes[int(0.9 * (len(sizes) - 1))],
            "max": sizes[-1],
            "mean": round(statistics.fmean(sizes), 1),
        }
        sample = list(stored.values())[:5_000]
        result["python_bytes_per_cached_profile"] = heap_bytes(
            sample, lambda raw: decode_profile(raw, cfg.profile)
        )
    return result


def heap_bytes(blobs: Sequence[bytes], decode: Callable[[bytes], object]) -> int:
    """Mean heap bytes of one decoded value (tracemalloc over a sample)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [decode(raw) for raw in blobs]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return round((after - before) / max(len(kept), 1))


def saturated_profile_bytes(events: Sequence[Accepted]) -> int:
    """A heavy user: one profile fed every event of the run (all lists at their caps)."""
    p = UserProfile("u0123456")
    from ecomstream.profiles.profile import apply_event

    for a in events[:20_000]:
        apply_event(p, a.event)
    p.offsets = {"clicks": [11, 123_456_789], "purchases": [11, 1_234_567], "reviews": [11, 9]}
    return len(encode_profile(p))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--jsonl", type=Path)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--debounce", type=float, default=ProfileConfig().debounce_s)
    args = parser.parse_args(argv)
    cfg = PipelineConfig(profile=ProfileConfig(debounce_s=args.debounce))
    t0 = time.perf_counter()
    events = (
        from_jsonl(args.jsonl, args.events)
        if args.jsonl
        else simulated(args.users, args.events, args.seed)
    )
    print(f"{len(events):,} events ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    rows = [run(events, args.batch, mode, cfg) for mode in args.modes.split(",")]
    report = {
        "events": len(events),
        "users": args.users,
        "batch": args.batch,
        "debounce_s": args.debounce,
        "python": sys.version.split()[0],
        "results": rows,
        "saturated_profile_bytes": saturated_profile_bytes(events),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print("| mode | events/s (wall) | events/CPU-s | triggers/event | notes |")
    print("| --- | ---: | ---: | ---: | --- |")
    for r in rows:
        notes = ""
        if "ms_per_rank" in r:
            notes = (
                f"{r['ms_per_rank']} ms per list; {r['events_per_s_without_ranking']:,} ev/s "
                "without ranking"
            )
        if "item_record_bytes" in r:
            b = r["item_record_bytes"]
            notes = (
                f"item record bytes median {b['median']:.0f}, max {b['max']}; "
                f"{b['python_bytes_per_record']} B per decoded record in memory"
            )
        if "profile_bytes" in r:
            b = r["profile_bytes"]
            notes = (
                f"profile bytes median {b['median']:.0f}, p90 {b['p90']}, max {b['max']}; "
                f"{r['python_bytes_per_cached_profile']} B per decoded profile in memory"
            )
        print(
            f"| {r['mode']} | {r['events_per_s']:,} | {r['events_per_cpu_s']:,} | "
            f"{r['trigger_share']} | {notes} |"
        )
    print(f"\nsaturated profile: {report['saturated_profile_bytes']} bytes; → {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
