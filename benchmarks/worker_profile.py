"""Where the real worker spends its time: py-spy samples, grouped by module.

``benchmarks.behaviour_cpu`` times the handlers offline; this samples the whole worker
process (Kafka clients, commits, event loop, logging included), on a new broker
warmed by one discarded run, in one of two modes:

* full speed (default): the worker drains the same pre-produced simulator topics as
  ``benchmarks.profiles_path`` — where throughput goes;
* ``--rate N``: the simulator produces to fresh topics at N events/s while the worker
  keeps up — where the latency path's time goes (small batches: per-batch and
  per-request costs weigh more). This mode found faust's spinner turning DEBUG
  logging on (``streams/worker.py``).

Shares are inclusive (a frame counts for every module on its stack) and of the
samples where the worker was busy; the functions with the most samples of their own
follow.

    .venv/bin/python -m benchmarks.worker_profile [--events 200000] [--seconds 8] [--rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

from benchmarks.ingest import _produce
from benchmarks.profiles_path import (
    EVENTS_PROCESSED,
    _fresh_broker,
    _latency,
    _rate,
    _running,
    _worker,
    produce_paced,
)
from ecomstream.config import Settings
from ecomstream.launchers.process import exit_on_sigterm

DEFAULT_COMMIT_MS: int = Settings.model_fields["commit_interval_ms"].default

#: Label → a path fragment of the frames it covers.
GROUPS = {
    "behaviour handler": "ecomstream/dataflows/behaviour.py",
    "  ranking": "ecomstream/recommend/recommender.py",
    "  profile updates (pipeline)": "ecomstream/recommend/pipeline.py",
    "  validation (ingest, events)": "ecomstream/ingest.py",
    "item records and index": "ecomstream/recommend/items.py",
    "item flow": "ecomstream/dataflows/items.py",
    "commit snapshots": "ecomstream/processing/commit.py",
    "aiokafka": "aiokafka/",
    "logging": "logging/__init__.py",
    "waiting in select": "selectors.py",
}


_LINE = re.compile(r":\d+\)$")


def summarize(raw: Path, top: int) -> tuple[int, dict[str, float], list[tuple[str, float]]]:
    """From py-spy's raw output: busy samples, the inclusive share of each group, and the
    ``top`` functions by their share of busy samples as the innermost frame."""
    total, hits, own = 0, Counter[str](), Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        for label, fragment in GROUPS.items():
            if fragment in stack:
                hits[label] += n
        own[_LINE.sub(")", stack.rsplit(";", 1)[-1])] += n  # all lines of a function
    busy = max(total, 1)
    return (
        total,
        {label: hits[label] / busy for label in GROUPS},
        [(frame, n / busy) for frame, n in own.most_common(top)],
    )


def _record(spy: str, pid: int, seconds: int, raw: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--output", str(raw), "--nonblocking"],
    )  # fmt: skip


def _sample_paced(
    spy: str, work: Path, raw: Path, bootstrap: str, rate: float, seconds: int
) -> str:
    # The warm-up is a paced run too; the sampled run gets fresh topics.
    _latency(work, bootstrap, rate, seconds, DEFAULT_COMMIT_MS, "immediate")
    prefix = f"spy{uuid.uuid4().hex[:4]}-"
    worker = _worker(work, bootstrap, prefix)
    try:
        recorder = _record(spy, worker.pid or 0, seconds, raw)
        produce_paced(work, bootstrap, prefix, rate, int(rate * (seconds + 2)))  # outlasts it
        recorder.wait()
    finally:
        worker.stop()
    return f"worker kept up with {rate:,.0f} events/s"


def _sample_full_speed(
    spy: str, work: Path, raw: Path, bootstrap: str, events: int, seconds: int
) -> str:
    total = asyncio.run(_produce(bootstrap, events, bad_every=10**9))
    with _running(work, bootstrap) as worker:  # warm-up, discarded
        _rate(worker, total, EVENTS_PROCESSED)
    with _running(work, bootstrap) as worker:
        recorder = _record(spy, worker.pid or 0, seconds, raw)
        rate = _rate(worker, total, EVENTS_PROCESSED)
        recorder.wait()
    return f"worker drained {total:,} events at {rate:,.0f} events/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="full speed: events drained")
    parser.add_argument("--seconds", type=int, default=8, help="sampling time")
    parser.add_argument("--rate", type=float, default=0.0, help="paced: events/s (0: full speed)")
    parser.add_argument("--top", type=int, default=15, help="functions listed by own samples")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="ecomstream-spy-") as tmp:
        work, raw = Path(tmp), Path(tmp) / "samples.txt"
        with _fresh_broker(work / "kafka") as bootstrap:
            if args.rate > 0:
                what = _sample_paced(spy, work, raw, bootstrap, args.rate, args.seconds)
            else:
                what = _sample_full_speed(spy, work, raw, bootstrap, args.events, args.seconds)
        busy, by_group, own = summarize(raw, args.top)
    print(f"{what}; {busy:,} busy samples")
    for label, share in by_group.items():
        print(f"  {label:32s} {share:6.1%}")
    print("own samples (innermost frame):")
    for frame, share in own:
        print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
