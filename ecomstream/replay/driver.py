"""Run the real worker over recorded input in an isolated namespace, one event-time step at a time.

Isolation: every topic the replay touches is named ``replay.<namespace>.<topic>``;
the worker's groups, transactional ids and changelogs derive from that prefix,
and its state lives under the run directory. The source is read without a
consumer group. So a replay never writes to the live topics, and two replays
with different namespaces share nothing.

Determinism: the worker runs in stepped mode (``ECOMSTREAM_STEPPED``). Per
step the driver produces the step's input, waits until every review of it
is scored, then asks the worker for one step (behaviour, then items), which
processes exactly what is committed and returns when its outputs are
readable. Batch boundaries are then a function of the recording and the step
length, not of timing, and two replays of the same input and configuration
give the same outputs (:mod:`ecomstream.replay.outputs` says which measured
fields are left out of that comparison).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from ecomstream.config import Settings
from ecomstream.events import Limits, ReviewEvent, decode_event
from ecomstream.launchers.kafka import MAX_MESSAGE_BYTES
from ecomstream.launchers.process import find_free_port, tail
from ecomstream.launchers.worker import WorkerProcess
from ecomstream.replay.outputs import collect_outputs, read_outputs
from ecomstream.replay.source import RecordedEvent, event_time_steps
from ecomstream.topics import (
    delete_topics,
    ensure_contract_topics,
    partitions_of,
    topics_with_prefix,
)

log = logging.getLogger(__name__)
NAMESPACE_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MANIFEST: Final = "replay.json"


class ReplayError(RuntimeError):
    """The replay cannot start or did not finish; the message says why."""


def namespace_prefix(namespace: str) -> str:
    """The topic prefix of a replay namespace.

    >>> namespace_prefix("model-v2")
    'replay.model-v2.'
    """
    if not NAMESPACE_PATTERN.match(namespace):
        raise ReplayError(f"namespace {namespace!r}: use lowercase letters, digits, - and _")
    return f"replay.{namespace}."


@dataclass(frozen=True)
class ReplayConfig:
    namespace: str
    bootstrap_servers: str
    run_dir: Path
    step_ms: int = 60_000
    speed: float | None = None  # None: as fast as possible; 1.0: recorded speed
    model_dir: Path | None = None  # exported artifact; None: reviews are not scored
    partitions: int = 4
    settings: Mapping[str, str] = field(default_factory=dict)  # extra ECOMSTREAM_* settings
    reset: bool = False
    progress: bool = True
    step_timeout_s: float = 600.0

    @property
    def prefix(self) -> str:
        return namespace_prefix(self.namespace)


@dataclass
class _Timing:
    started: float = field(default_factory=time.perf_counter)
    steps: list[float] = field(default_factory=list)
    scoring_waits: list[float] = field(default_factory=list)


def run_replay(
    config: ReplayConfig, events: Sequence[RecordedEvent], source: Mapping[str, Any]
) -> dict[str, Any]:
    """Replay ``events``; collect the outputs into ``run_dir``; return the manifest."""
    return asyncio.run(_replay(config, events, source))


async def _replay(
    config: ReplayConfig, events: Sequence[RecordedEvent], source: Mapping[str, Any]
) -> dict[str, Any]:
    prefix = config.prefix
    await _prepare_namespace(config)
    settings = Settings(
        bootstrap_servers=config.bootstrap_servers,
        topic_prefix=prefix,
        partitions=config.partitions,
    )
    await ensure_contract_topics(settings)
    worker = _worker(config)
    timing = _Timing()
    worker.start(timeout=180)
    try:
        counts = await _drive(config, worker, events, timing)
        outputs = await collect_outputs(config.bootstrap_servers, prefix, config.run_dir)
    except BaseException:
        log.error("replay %s failed; worker log tail:\n%s", config.namespace, tail(worker.log_path))
        raise
    finally:
        worker.stop()
    manifest = _manifest(config, source, counts, outputs, timing)
    (config.run_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


async def _prepare_namespace(config: ReplayConfig) -> None:
    """Refuse a used namespace (or empty it with ``reset``); never touch other topics."""
    used = await topics_with_prefix(config.bootstrap_servers, config.prefix)
    if used and not config.reset:
        raise ReplayError(
            f"namespace {config.namespace!r} already has {len(used)} topics "
            f"(e.g. {used[0]}); choose another namespace or reset it"
        )
    await delete_topics(config.bootstrap_servers, used)
    if config.run_dir.exists() and config.reset:
        shutil.rmtree(config.run_dir)
    config.run_dir.mkdir(parents=True, exist_ok=True)


def _worker(config: ReplayConfig) -> WorkerProcess:
    settings = {
        "bootstrap_servers": config.bootstrap_servers,
        "topic_prefix": config.prefix,
        "partitions": str(config.partitions),
        "stepped": "true",
        "store": "memory://",
        "instance_id": f"replay-{config.namespace}",
        "score_reviews": "true" if config.model_dir else "false",
        "scorer": "onnx",
        **({"model_artifact_dir": str(config.model_dir.resolve())} if config.model_dir else {}),
        **dict(config.settings),
    }
    return WorkerProcess(config.run_dir / "worker", web_port=find_free_port(), settings=settings)


async def _drive(
    config: ReplayConfig, worker: WorkerProcess, events: Sequence[RecordedEvent], timing: _Timing
) -> dict[str, Any]:
    limits = Limits(max_review_chars=int(config.settings.get("max_review_chars", 5_000)))
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_request_size=MAX_MESSAGE_BYTES,
    )
    scores = _TopicSize(config.bootstrap_servers, config.prefix + "review-scores")
    await producer.start()
    await scores.start()
    inputs: Counter[str] = Counter()
    expected_scores = 0
    bar = tqdm(
        total=len(events), unit="ev", desc=f"replay {config.namespace}", disable=not config.progress
    )
    try:
        steps = list(event_time_steps(events, config.step_ms))
        origin = steps[0][0].ts if steps else 0
        for step in steps:
            await _pace(config.speed, origin, step[0].ts, timing.started)
            sends = [
                await producer.send(
                    config.prefix + e.topic,
                    e.value,
                    e.key,
                    partition=e.partition,
                    timestamp_ms=e.timestamp,
                )
                for e in step
            ]
            await asyncio.gather(*sends)
            inputs.update(e.topic for e in step)
            if config.model_dir is not None:
                expected_scores += sum(1 for e in step if _scored(e, limits))
                waited = await scores.wait_for(expected_scores, config.step_timeout_s)
                timing.scoring_waits.append(waited)
            timing.steps.append(await _step(worker, config.step_timeout_s))
            bar.update(len(step))
        # The last step's scores reach the profiles through review-scores-by-user.
        timing.steps.append(await _step(worker, config.step_timeout_s))
    finally:
        bar.close()
        await producer.stop()
        await scores.stop()
    return {"inputs": dict(inputs), "steps": len(timing.steps), "scored": expected_scores}


def _scored(event: RecordedEvent, limits: Limits) -> bool:
    """Whether the scoring agent will score this message (what it skips, ingest dead-letters)."""
    return event.topic == "reviews" and isinstance(
        decode_event("reviews", event.value, limits), ReviewEvent
    )


async def _pace(speed: float | None, origin_ts: int, step_ts: int, started: float) -> None:
    if not speed:
        return
    due = started + (step_ts - origin_ts) / 1000 / speed
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def _step(worker: WorkerProcess, timeout: float) -> float:
    """POST /step on the worker; the seconds it took."""
    started = time.perf_counter()

    def post() -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{worker.web_port}/step", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()

    try:
        await asyncio.to_thread(post)
    except OSError as exc:
        raise ReplayError(f"worker step failed ({exc}); worker log: {worker.log_path}") from exc
    return time.perf_counter() - started


class _TopicSize:
    """Record count of one topic (sum of end offsets), read with a long-lived consumer."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
        self._tps: list[TopicPartition] = []

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await partitions_of(self.bootstrap_servers, self.topic)
        self._tps = [TopicPartition(self.topic, p) for p in partitions]

    async def stop(self) -> None:
        await self._consumer.stop()

    async def size(self) -> int:
        return sum((await self._consumer.end_offsets(self._tps)).values())

    async def wait_for(self, count: int, timeout: float) -> float:
        """Wait until the topic holds ``count`` records; the seconds waited."""
        started = time.perf_counter()
        while (found := await self.size()) < count:
            if time.perf_counter() - started > timeout:
                raise ReplayError(
                    f"{self.topic}: {found} of {count} scores after {timeout:.0f}s "
                    "(is the model artifact valid? see the worker log)"
                )
            await asyncio.sleep(0.05)
        return time.perf_counter() - started


def _percentile(values: Sequence[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _manifest(
    config: ReplayConfig,
    source: Mapping[str, Any],
    counts: Mapping[str, Any],
    outputs: Mapping[str, int],
    timing: _Timing,
) -> dict[str, Any]:
    wall = time.perf_counter() - timing.started
    events = sum(counts["inputs"].values())
    latencies = [
        float(r["value"]["latency_ms"])
        for r in read_outputs(config.run_dir, "review-scores")
        if isinstance(r.get("value"), dict) and "latency_ms" in r["value"]
    ]
    model = None
    if config.model_dir is not None:
        meta = json.loads((config.model_dir / "meta.json").read_text())
        model = {
            "dir": str(config.model_dir),
            "name": meta.get("name"),
            "version": meta.get("version"),
            "quantized": meta.get("quantized"),
        }
    return {
        "namespace": config.namespace,
        "prefix": config.prefix,
        "source": dict(source),
        "step_ms": config.step_ms,
        "speed": config.speed,
        "partitions": config.partitions,
        "model": model,
        "settings": dict(config.settings),
        "inputs": counts["inputs"],
        "scored_reviews_expected": counts["scored"],
        "outputs": dict(outputs),
        "observed": {
            "wall_s": round(wall, 2),
            "events_per_s": round(events / wall, 1) if wall > 0 else None,
            "steps": counts["steps"],
            "step_s_p50": _round(_percentile(timing.steps, 50)),
            "step_s_p99": _round(_percentile(timing.steps, 99)),
            "scoring_wait_s_p50": _round(_percentile(timing.scoring_waits, 50)),
            "scoring_call_ms_p50": _round(_percentile(latencies, 50)),
            "scoring_call_ms_p99": _round(_percentile(latencies, 99)),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
