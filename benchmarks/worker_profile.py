"""Where the real worker spends its time at full speed: py-spy samples, grouped by module.

``benchmarks.behaviour_cpu`` times the handlers offline; this samples the whole worker
process (Kafka clients, commits, event loop included) while it drains the same
pre-produced simulator topics as ``benchmarks.profiles_path``, on a new broker warmed
by one discarded run. Shares are inclusive (a frame counts for every module on its
stack) and of the samples where the worker was busy.

    .venv/bin/python -m benchmarks.worker_profile [--events 200000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.ingest import _produce
from benchmarks.profiles_path import EVENTS_PROCESSED, _fresh_broker, _rate, _running
from ecomstream.launchers.process import exit_on_sigterm

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
    "waiting in select": "selectors.py",
}


def shares(raw: Path) -> tuple[int, dict[str, float]]:
    """Busy samples and the inclusive share of each group, from py-spy's raw output."""
    total, hits = 0, Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        for label, fragment in GROUPS.items():
            if fragment in stack:
                hits[label] += n
    return total, {label: hits[label] / max(total, 1) for label in GROUPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="ecomstream-spy-") as tmp:
        work, raw = Path(tmp), Path(tmp) / "samples.txt"
        with _fresh_broker(work / "kafka") as bootstrap:
            total = asyncio.run(_produce(bootstrap, args.events, bad_every=10**9))
            with _running(work, bootstrap) as worker:  # warm-up, discarded
                _rate(worker, total, EVENTS_PROCESSED)
            with _running(work, bootstrap) as worker:
                recorder = subprocess.Popen(
                    [spy, "record", "--pid", str(worker.pid), "--duration", str(args.seconds),
                     "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
                )  # fmt: skip
                rate = _rate(worker, total, EVENTS_PROCESSED)
                recorder.wait()
        busy, by_group = shares(raw)
    print(f"worker drained {total:,} events at {rate:,.0f} events/s; {busy:,} busy samples")
    for label, share in by_group.items():
        print(f"  {label:32s} {share:6.1%}")


if __name__ == "__main__":
    main()
