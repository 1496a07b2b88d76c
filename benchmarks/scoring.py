"""Review scoring: reviews/s and latency through Triton vs the in-process scorer, one run.

The same model (the exported ``runs/export/review_sentiment`` if present, else
the tiny random test model) and the same review texts go through, interleaved
per repeat (the order rotates each repeat):

- ``in-process``: :class:`~ecomstream.inference.onnx.OnnxScorer`, one
  ``score()`` call per batch of 8/32/64, sequentially (its runs are
  serialized anyway); latency per batch call;
- ``Triton, client batches``: :class:`~ecomstream.inference.triton.TritonScorer`
  behind a :class:`~ecomstream.inference.batcher.MicroBatcher` (batches of
  8/32/64, ``IN_FLIGHT`` requests at once; Triton's dynamic batcher may merge
  them up to its ``max_batch_size``); latency per gRPC request;
- ``Triton, one request per review``: batch 1, from ``CONCURRENT_CLIENTS``
  concurrent callers and from one sequential caller.

Fair: both sides run one ONNX Runtime session with one intra-op thread (one
Triton instance, KIND_CPU), tokenization included, on the same machine; the
Triton server and this client share its cores. Rates are reviews over the
wall time of the whole pass.

    .venv/bin/python -m benchmarks.scoring --reviews 200 --repeats 2
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.report import Variant, write
from ecomstream.data.corpus import load_review_corpus
from ecomstream.inference.base import SentimentScore
from ecomstream.inference.batcher import MicroBatcher
from ecomstream.inference.onnx import OnnxScorer
from ecomstream.inference.repository import (
    DEFAULT_MAX_QUEUE_DELAY_US,
    DEFAULT_PREFERRED_BATCH_SIZES,
    install_model,
)
from ecomstream.inference.runtime import ModelMeta
from ecomstream.inference.triton import TritonScorer
from ecomstream.launchers.process import find_free_port
from ecomstream.launchers.triton import TritonServer

EXPORTED = Path(__file__).resolve().parent.parent / "runs" / "export" / "review_sentiment"
MODEL_NAME = "review_sentiment"
BATCH_SIZES = (8, 32, 64)
SERVER_MAX_BATCH = 64
IN_FLIGHT = 4
CONCURRENT_CLIENTS = 8
BATCHER_DELAY_MS = 5.0
OVERHEAD_TARGET = 0.10
SPEEDUP_TARGET = 10.0

Measure = Callable[[Sequence[str]], Awaitable[tuple[float, list[float]]]]


@dataclass
class Config:
    """One way of scoring the texts: a throughput variant plus its p50/p99 variants."""

    key: str
    label: str
    measure: Measure
    latency_of: str
    rate: Variant = field(init=False)
    p50: Variant = field(init=False)
    p99: Variant = field(init=False)

    def __post_init__(self) -> None:
        self.rate = Variant(self.label, "reviews/s")
        self.p50 = Variant(f"{self.label}: p50 latency per {self.latency_of}", "ms")
        self.p99 = Variant(f"{self.label}: p99 latency per {self.latency_of}", "ms")

    def record(self, rate: float, latencies_s: list[float]) -> None:
        self.rate.runs.append(rate)
        ms = np.asarray(latencies_s) * 1000.0
        self.p50.runs.append(float(np.percentile(ms, 50)))
        self.p99.runs.append(float(np.percentile(ms, 99)))


def review_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` corpus reviews, both labels, in a seeded random order."""
    corpus = load_review_corpus()
    texts = [*corpus.positive, *corpus.negative]
    return random.Random(seed).sample(texts, min(n, len(texts)))


def chunks(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


def in_process(scorer: OnnxScorer, batch: int) -> Measure:
    async def measure(texts: Sequence[str]) -> tuple[float, list[float]]:
        latencies = []
        started = time.perf_counter()
        for chunk in chunks(texts, batch):
            t0 = time.perf_counter()
            await scorer.score(chunk)
            latencies.append(time.perf_counter() - t0)
        return len(texts) / (time.perf_counter() - started), latencies

    return measure


def triton_batched(scorer: TritonScorer, batch: int, in_flight: int) -> Measure:
    async def measure(texts: Sequence[str]) -> tuple[float, list[float]]:
        latencies: list[float] = []

        async def timed(items: Sequence[str]) -> list[SentimentScore]:
            t0 = time.perf_counter()
            scores = await scorer.score(items)
            latencies.append(time.perf_counter() - t0)
            return scores

        started = time.perf_counter()
        async with MicroBatcher(
            timed,
            max_batch_size=batch,
            max_delay_ms=BATCHER_DELAY_MS,
            max_concurrent_batches=in_flight,
        ) as batcher:
            await batcher.submit_many(texts)
        return len(texts) / (time.perf_counter() - started), latencies

    return measure


def triton_single(scorer: TritonScorer, clients: int) -> Measure:
    async def measure(texts: Sequence[str]) -> tuple[float, list[float]]:
        latencies: list[float] = []
        queue = iter(texts)

        async def client() -> None:
            for text in queue:  # shared iterator: each text goes to exactly one client
                t0 = time.perf_counter()
                await scorer.score([text])
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return len(texts) / (time.perf_counter() - started), latencies

    return measure


def resolve_artifact(artifact: Path | None, work: Path) -> tuple[Path, str]:
    if artifact is not None:
        return artifact, f"given artifact {artifact}"
    if (EXPORTED / "model.onnx").is_file():
        return EXPORTED, "exported runs/export/review_sentiment"
    from ecomstream.testing.triton import build_tiny_sentiment_artifact

    return build_tiny_sentiment_artifact(work / "tiny"), "tiny random test model (no export found)"


async def _bench(
    url: str, artifact: Path, texts: list[str], repeats: int
) -> tuple[list[Config], float]:
    meta = ModelMeta.load(artifact)
    local = OnnxScorer(artifact, intra_op_threads=1, max_batch_size=SERVER_MAX_BATCH)
    remote = TritonScorer(
        url,
        MODEL_NAME,
        labels=meta.labels,
        max_batch_size=SERVER_MAX_BATCH,
        max_in_flight=max(IN_FLIGHT, CONCURRENT_CLIENTS),
    )
    try:
        if not await remote.wait_ready(60):
            raise RuntimeError(f"Triton at {url} is not ready")
        configs = [
            *(
                Config(f"local{b}", f"in-process OnnxScorer, batch {b}", in_process(local, b),
                       "batch call")
                for b in BATCH_SIZES
            ),
            *(
                Config(f"triton{b}", f"Triton, client batches of {b}, {IN_FLIGHT} in flight",
                       triton_batched(remote, b, IN_FLIGHT), "request")
                for b in BATCH_SIZES
            ),
            Config("single-concurrent",
                   f"Triton, one request per review, {CONCURRENT_CLIENTS} concurrent clients",
                   triton_single(remote, CONCURRENT_CLIENTS), "request"),
            Config("single-sequential", "Triton, one request per review, one sequential client",
                   triton_single(remote, 1), "request"),
        ]  # fmt: skip
        # Warm-up (first runs allocate) and a check that both sides give the same labels.
        sample = texts[:SERVER_MAX_BATCH]
        local_labels = [s.label for s in await local.score(sample)]
        remote_labels = [s.label for s in await remote.score(sample)]
        await remote.score(sample[:1])
        agreement = sum(a == b for a, b in zip(local_labels, remote_labels, strict=True)) / len(
            sample
        )

        with tqdm(total=repeats * len(configs), desc="scoring bench", unit="pass") as bar:
            for r in range(repeats):
                shift = r % len(configs)
                for config in configs[shift:] + configs[:shift]:
                    bar.set_postfix_str(config.key)
                    config.record(*await config.measure(texts))
                    bar.update()
        return configs, agreement
    finally:
        await remote.close()
        await local.close()


def _annotate(configs: list[Config]) -> None:
    """Overhead ratio and speed-up over one-request-per-review, in the variants' notes."""
    local = [c for c in configs if c.key.startswith("local")]
    batched = [c for c in configs if c.key.startswith("triton")]
    singles = [c for c in configs if c.key.startswith("single")]
    best_local = max(local, key=lambda c: c.rate.median)
    best_triton = max(batched, key=lambda c: c.rate.median)
    best_local.rate.note = "in-process best"
    ratio = best_triton.rate.median / best_local.rate.median
    verdict = "met" if ratio >= 1 - OVERHEAD_TARGET else "NOT met"
    overhead = f"overhead {1 - ratio:.0%}" if ratio < 1 else "no overhead"
    best_triton.rate.note = (
        f"Triton best / in-process best = {ratio:.2f} ({overhead}; "
        f"target <= {OVERHEAD_TARGET:.0%}: {verdict})"
    )
    for single in singles:
        speedup = best_triton.rate.median / single.rate.median
        verdict = "met" if speedup >= SPEEDUP_TARGET else "NOT met"
        single.rate.note = (
            f"Triton best batched is {speedup:.1f}x this (target >= {SPEEDUP_TARGET:.0f}x: "
            f"{verdict})"
        )


def run(n_reviews: int = 2000, repeats: int = 3, artifact: Path | None = None) -> Path:
    os.environ["OMP_NUM_THREADS"] = "1"  # this process and (inherited) the Triton server
    texts = review_texts(n_reviews)
    with tempfile.TemporaryDirectory(prefix="ecomstream-bench-scoring-") as tmp:
        work = Path(tmp)
        model_dir, model_source = resolve_artifact(artifact, work)
        meta = ModelMeta.load(model_dir)
        repo = work / "repo"
        install_model(
            model_dir,
            repo,
            MODEL_NAME,
            version=1,
            instance_kind="KIND_CPU",
            instance_count=1,
            max_batch_size=SERVER_MAX_BATCH,
            intra_op_threads=1,
        )
        server = TritonServer(
            repo,
            work / "triton",
            http_port=find_free_port(),
            grpc_port=find_free_port(),
            metrics_port=find_free_port(),
        )
        server.start(timeout=180)
        try:
            configs, agreement = asyncio.run(_bench(server.grpc_url, model_dir, texts, repeats))
        finally:
            server.stop()
    _annotate(configs)
    variants = [c.rate for c in configs] + [v for c in configs for v in (c.p50, c.p99)]
    return write(
        "scoring",
        "Review scoring: reviews/s and latency, Triton vs in-process, same model and texts",
        variants,
        {
            "model": f"{model_source} ({meta.name} v{meta.version}, quantized={meta.quantized}, "
            f"max_len={meta.max_len})",
            "reviews": len(texts),
            "mean_review_chars": round(statistics.mean(len(t) for t in texts)),
            "repeats": repeats,
            "threads": "1 intra-op thread per model instance, both sides",
            "triton": f"1 instance KIND_CPU, python backend, max_batch_size={SERVER_MAX_BATCH}, "
            f"preferred={list(DEFAULT_PREFERRED_BATCH_SIZES)}, "
            f"max_queue_delay_us={DEFAULT_MAX_QUEUE_DELAY_US}, gRPC on 127.0.0.1, same machine",
            "client_batcher_delay_ms": BATCHER_DELAY_MS,
            "label_agreement_triton_vs_in_process": f"{agreement:.0%} of a warm-up batch",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--artifact", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(run(args.reviews, args.repeats, args.artifact).read_text())


if __name__ == "__main__":
    main()
