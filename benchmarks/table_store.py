"""Profile table memory for a million users: in memory (``memory://``) vs RocksDB (``rocksdb://``).

Profiles come from the simulator run through the profile logic (20,000 users);
a million keys reuse their encoded values. Each variant runs in its own
process so its resident memory is its own:

* memory: a dict of decoded profiles, as ``memory://`` tables keep them — measured
  for ``--sample`` users and scaled linearly (a million would not fit beside the
  other work on this machine);
* rocksdb: a :class:`~ecomstream.processing.stores.RocksStore` filled with a million
  encoded profiles as recovery fills it, then ``--reads`` random reads through its
  cache (4 partitions × the default 25,000 keys), with trims between batches.

Each once with Python profiles (``ecomstream.profiles``) and once with the native ones
the worker holds by default (``native/``; the same encoded bytes).

    .venv/bin/python -m benchmarks table_store
"""

from __future__ import annotations

import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import Variant, write

USERS_TOTAL = 1_000_000


def _profiles(users: int = 20_000, events: int = 300_000) -> list[bytes]:
    from benchmarks.profiles import simulated
    from ecomstream.profiles.codec import encode_profile
    from ecomstream.recommend.pipeline import process_batch

    accepted = simulated(users, events, seed=3)
    profiles: dict[str, Any] = {}
    for i in range(0, len(accepted), 1_000):
        out = process_batch(accepted[i : i + 1_000], profiles.get)
        profiles.update(out.profiles)
    return [encode_profile(p) for p in profiles.values()]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _codec(native: bool) -> tuple[Any, Any]:
    """(encode, decode) of the profiles table: the Python codec, or the native profiles'."""
    if native:
        from ecomstream.recommend.native import NativeBehaviour, NativeItemIndex

        kernel = NativeBehaviour(NativeItemIndex()).kernel
        return kernel.encode, kernel.decode
    from ecomstream.profiles.codec import decode_profile, encode_profile

    return encode_profile, decode_profile


def _child(mode: str, sample: int, reads: int) -> dict[str, float]:
    """Runs in a fresh process: one variant, its memory and timings."""
    from ecomstream.processing.stores import RocksStore

    encode_profile, decode_profile = _codec(mode.endswith("-native"))
    blobs = _profiles()
    gc.collect()
    base = _rss_mb()
    if mode.startswith("memory"):
        kept = {f"u{i:07d}": decode_profile(blobs[i % len(blobs)]) for i in range(sample)}
        gc.collect()
        per_user = (_rss_mb() - base) * 2**20 / len(kept)
        return {"bytes_per_user": per_user, "gb_per_million": per_user * USERS_TOTAL / 2**30}
    with tempfile.TemporaryDirectory(prefix="ecomstream-rocks-") as tmp:
        store = RocksStore(
            Path(tmp) / "profiles", encode_profile, decode_profile, cache_keys=4 * 25_000
        )
        started = time.perf_counter()
        for i in range(USERS_TOTAL):
            store.put_encoded(b"u%07d" % i, blobs[i % len(blobs)])
        load_s = time.perf_counter() - started
        rng = random.Random(1)
        started = time.perf_counter()
        for _batch in range(reads // 1_000):
            for _ in range(1_000):
                profile = store.get(f"u{rng.randrange(USERS_TOTAL):07d}")
                assert profile is not None
            store.trim()  # what the processor does between batches
        read_s = time.perf_counter() - started
        disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
        return {
            "rss_mb": _rss_mb() - base,
            "disk_mb": disk / 2**20,
            "load_per_s": USERS_TOTAL / load_s,
            "reads_per_s": reads / read_s,
        }


def _in_child(mode: str, sample: int, reads: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.table_store", "--child", mode, str(sample), str(reads)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(repeats: int = 3, sample: int = 100_000, reads: int = 200_000) -> Path:
    from ecomstream.profiles.codec import encode_profile  # noqa: F401  (fail early)

    sizes = sorted(len(b) for b in _profiles())
    memory = Variant("memory://: decoded profiles in a dict, per user", "bytes")
    memory_m = Variant("memory://: 1M users (scaled from the sample)", "GiB")
    native = Variant("memory://: native profiles (the worker's default) in a dict, per user",
                     "bytes", note="native/: the same changelog bytes")  # fmt: skip
    native_m = Variant("memory://: 1M native profiles (scaled from the sample)", "GiB")
    native_rss = Variant("rocksdb://: 1M native profiles, process memory (RSS) after the reads",
                         "MiB", note="cache: 4 × 25,000 decoded keys")  # fmt: skip
    native_read = Variant("rocksdb://: random reads over 1M native profiles", "reads/s")
    rss = Variant("rocksdb://: 1M users, process memory (RSS) after the reads", "MiB",
                  note="cache: 4 × 25,000 decoded keys")  # fmt: skip
    disk = Variant("rocksdb://: 1M users, on disk", "MiB")
    load = Variant("rocksdb://: recovery-style load of 1M encoded profiles", "profiles/s")
    read = Variant("rocksdb://: random reads over 1M users (mostly cache misses)", "reads/s",
                   note="trim every 1,000 reads, as between batches")  # fmt: skip
    for _ in range(repeats):
        m = _in_child("memory", sample, reads)
        memory.runs.append(m["bytes_per_user"])
        memory_m.runs.append(m["gb_per_million"])
        r = _in_child("rocksdb", sample, reads)
        rss.runs.append(r["rss_mb"])
        disk.runs.append(r["disk_mb"])
        load.runs.append(r["load_per_s"])
        read.runs.append(r["reads_per_s"])
        m = _in_child("memory-native", sample, reads)
        native.runs.append(m["bytes_per_user"])
        native_m.runs.append(m["gb_per_million"])
        r = _in_child("rocksdb-native", sample, reads)
        native_rss.runs.append(r["rss_mb"])
        native_read.runs.append(r["reads_per_s"])
    encoded = Variant("encoded profile (changelog value), median", "bytes",
                      runs=[statistics.median(sizes)],
                      note=f"p90 {sizes[int(0.9 * (len(sizes) - 1))]}, max {sizes[-1]}, "
                           f"{len(sizes):,} simulated users")  # fmt: skip
    return write(
        "table_store",
        "Profile tables: memory for a million users, in memory vs RocksDB",
        [
            encoded,
            memory,
            memory_m,
            native,
            native_m,
            rss,
            disk,
            load,
            read,
            native_rss,
            native_read,
        ],
        {"users": USERS_TOTAL, "memory_sample": sample, "reads": reads, "repeats": repeats},
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(run().read_text())
