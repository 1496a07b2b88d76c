"""The batch processor on a real broker: exact counts, exactly-once outputs, recovery, kill -9.

The handler counts events per key (a changelogged table) and writes one
output per event whose value names the source record (topic, partition,
offset): a duplicate output is then visible as a repeated value.

Also runnable as a process (the kill -9 test needs one)::

    python -m tests.integration.test_processing --bootstrap HOST:PORT --group G \
        --transactional-id T --inputs a,b --output o
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from ecomstream import metrics
from ecomstream.launchers.kafka import KafkaBroker
from ecomstream.processing import (
    BatchContext,
    BatchProcessor,
    Handler,
    ProcessorCrashed,
    Record,
    TableSpec,
    changelog_topic,
)
from ecomstream.testing.kafka import (
    consume_all,
    consume_until,
    create_topics,
    group_caught_up,
    produce_raw,
    wait_for_async,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4
COUNTS = TableSpec[int]("counts", encode=lambda n: b"%d" % n, decode=int)
REPO = Path(__file__).resolve().parents[2]


def counting_handler(output: str) -> Handler:
    def handle(ctx: BatchContext, records: Sequence[Record]) -> None:
        counts = ctx.table(COUNTS)
        for r in records:
            key = r.key.decode() if r.key is not None else ""
            counts[key] = counts.get(key, 0) + 1
            ctx.send(output, r.key, f"{r.topic}:{r.partition}:{r.offset}".encode())

    return handle


def make_processor(
    bootstrap: str, group: str, inputs: Sequence[str], output: str, txn: str | None, **kw: object
) -> BatchProcessor:
    settings: dict[str, object] = {
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 300,
        "commit_interval_ms": 50,
        "max_batch": 1000,
    }
    settings.update(kw)
    return BatchProcessor(
        bootstrap,
        group,
        inputs,
        [COUNTS],
        counting_handler(output),
        transactional_id=txn,
        **settings,  # type: ignore[arg-type]
    )


class Scenario:
    """Fresh topics and a group; the events produced so far and what they should give."""

    def __init__(self, bootstrap: str, name: str) -> None:
        tag = f"{name}-{uuid.uuid4().hex[:6]}"
        self.bootstrap = bootstrap
        self.group = f"proc-{tag}"
        self.inputs = [f"{tag}-clicks", f"{tag}-purchases"]
        self.output = f"{tag}-out"
        self.expected: Counter[str] = Counter()
        self.produced = 0

    async def create(self) -> None:
        await create_topics(self.bootstrap, [*self.inputs, self.output], PARTITIONS)

    async def produce(self, n: int, users: int = 300) -> None:
        batches: dict[str, list[tuple[bytes | None, bytes | None]]] = {t: [] for t in self.inputs}
        for i in range(self.produced, self.produced + n):
            user = f"u{(i * 7919) % users}"
            batches[self.inputs[i % 2]].append((user.encode(), b"e%d" % i))
            self.expected[user] += 1
        for topic, records in batches.items():
            await produce_raw(self.bootstrap, topic, records)
        self.produced += n

    def processor(self, txn: str | None = "txn-a", **kw: object) -> BatchProcessor:
        return make_processor(self.bootstrap, self.group, self.inputs, self.output, txn, **kw)

    async def outputs(self, count: int, timeout: float = 60.0) -> list[bytes]:
        """Wait for ``count`` committed outputs; return every committed output value."""
        await consume_until(self.bootstrap, self.output, count, timeout)
        return [r.value or b"" for r in await consume_all(self.bootstrap, self.output)]

    async def changelog_state(self) -> dict[str, int]:
        """The table as the committed changelog says: the last value per key."""
        topic = changelog_topic(self.group, COUNTS.name)
        state: dict[str, int] = {}
        for r in await consume_all(self.bootstrap, topic):
            assert r.key is not None
            if r.value is None:
                state.pop(r.key.decode(), None)
            else:
                state[r.key.decode()] = int(r.value)
        return state


def assert_exactly_once(values: list[bytes], produced: int) -> None:
    dupes = [v for v, n in Counter(values).items() if n > 1]
    assert not dupes, f"{len(dupes)} duplicated outputs, e.g. {dupes[:5]}"
    assert len(values) == produced


async def _processed(processor: BatchProcessor, n: int) -> bool:
    if processor.error is not None:
        raise AssertionError(f"processor crashed: {processor.error!r}")
    return processor.stats.events >= n


def _changelog_records_metric(table: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(
        "ecomstream_changelog_records_total", {"table": table}
    )
    return sample or 0.0


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("txn", ["txn-basic", None], ids=["exactly-once", "at-least-once"])
async def test_counts_and_outputs_exactly_once_then_graceful_restart_recovers(
    kafka_broker: KafkaBroker, txn: str | None
) -> None:
    """Without a crash, at-least-once gives the same exact result as exactly-once."""
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "basic")
    await s.create()
    await s.produce(3000)
    written_before = _changelog_records_metric("counts")
    first = s.processor(txn)
    await first.start()
    try:
        await wait_for_async(lambda: first.ready, 60, description="first ready")
        await wait_for_async(lambda: _processed(first, 3000), 60, description="3000 processed")
        assert_exactly_once(await s.outputs(3000), 3000)
        assert first.table_items("counts") == s.expected
        assert first.stats.commits >= 1
    finally:
        await first.stop()
    assert first.error is None
    assert await s.changelog_state() == s.expected
    # A changelog record per touched key per commit, not per event; /metrics says how many.
    assert first.stats.changelog_records < 3000
    written = _changelog_records_metric("counts") - written_before
    assert written == first.stats.changelog_records > 0

    second = s.processor(txn)
    await second.start()
    try:
        await wait_for_async(lambda: second.ready, 60, description="second ready")
        assert second.stats.recovered_records > 0
        assert second.table_items("counts") == s.expected  # recovered, nothing replayed
        assert second.stats.events == 0
        await s.produce(2000)
        await wait_for_async(lambda: _processed(second, 2000), 60, description="2000 more")
        assert_exactly_once(await s.outputs(5000), 5000)
        assert second.table_items("counts") == s.expected
    finally:
        await second.stop()
    assert await s.changelog_state() == s.expected


async def test_stepped_processors_take_exactly_what_each_step_finds(
    kafka_broker: KafkaBroker,
) -> None:
    """Replay mode: a step processes everything committed so far as one batch, commits it,
    and returns once its outputs are readable, so the next stage's step sees all of them."""
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "stepped")
    final = f"{s.output}-final"
    await s.create()
    await create_topics(bootstrap, [final], PARTITIONS)
    first = s.processor("txn-step-1", stepped=True)
    # The second stage reads the first one's transactional output (commit markers).
    second = make_processor(
        bootstrap, f"{s.group}-2", [s.output], final, "txn-step-2", stepped=True
    )
    await first.start()
    await second.start()
    try:
        await wait_for_async(lambda: first.ready and second.ready, 60, description="ready")
        await s.produce(1000)
        assert await first.step() == 1000
        assert await second.step() == 1000
        assert len(await consume_all(bootstrap, final)) == 1000  # visible on return
        assert (first.stats.batches, second.stats.batches) == (1, 1)
        assert await second.step() == 0  # nothing new: past the commit markers, no wait

        await s.produce(500)
        assert first.stats.events == 1000  # nothing moves between steps
        assert await first.step() == 500
        assert await second.step() == 500
        assert_exactly_once(await s.outputs(1500), 1500)
        assert_exactly_once([r.value or b"" for r in await consume_all(bootstrap, final)], 1500)
        assert first.table_items("counts") == s.expected
    finally:
        await second.stop()
        await first.stop()


@pytest.mark.parametrize("txn", ["txn-markers", None], ids=["exactly-once", "at-least-once"])
async def test_idle_reader_of_a_transactional_topic_commits_past_its_markers(
    kafka_broker: KafkaBroker, txn: str | None
) -> None:
    """Once idle, a stage reading transactional output shows no lag: its group commits
    past the commit markers, not one short of every partition's end."""
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "markers")
    final = f"{s.output}-final"
    await s.create()
    await create_topics(bootstrap, [final], PARTITIONS)
    first = s.processor("txn-markers-1")
    second = make_processor(bootstrap, f"{s.group}-2", [s.output], final, txn)
    await first.start()
    await second.start()
    try:
        await s.produce(1000)
        await wait_for_async(lambda: _processed(second, 1000), 60, description="1000 relayed")
        await wait_for_async(
            lambda: group_caught_up(bootstrap, second.group_id, [s.output]),
            30,
            description="second stage committed up to the end of the transactional topic",
        )
        lag = {
            p: metrics.REGISTRY.get_sample_value(
                "ecomstream_consumer_lag_messages", {"topic": s.output, "partition": str(p)}
            )
            for p in range(PARTITIONS)
        }
        assert lag == dict.fromkeys(range(PARTITIONS), 0.0)
        assert second.stats.events == 1000  # moving the commit point skipped no record
    finally:
        await second.stop()
        await first.stop()
    assert_exactly_once([r.value or b"" for r in await consume_all(bootstrap, final)], 1000)


async def test_handler_error_crashes_without_committing(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "crash")
    await s.create()
    await s.produce(200)
    calls = 0

    def explode(ctx: BatchContext, records: Sequence[Record]) -> None:
        nonlocal calls
        calls += 1
        ctx.table(COUNTS)["x"] = 1
        ctx.send(s.output, b"x", b"never")
        raise RuntimeError("bad handler")

    processor = BatchProcessor(
        bootstrap, s.group, s.inputs, [COUNTS], explode, transactional_id="txn-crash"
    )
    with pytest.raises(ProcessorCrashed) as info:
        await processor.run()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert calls == 1 and not processor.healthy
    assert await consume_all(bootstrap, s.output) == []
    assert await s.changelog_state() == {}


async def test_kill_9_mid_stream_then_restart_is_exactly_once(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "kill")
    await s.create()
    total, chunk = 60_000, 20_000
    await s.produce(chunk, users=2000)
    # Two victims, each SIGKILLed mid-stream (the second may die inside a commit
    # and leave a transaction open; its successor's producer id aborts it). Input
    # arrives in chunks between the kills, so a fast processor cannot finish it all
    # before its kill (which would prove nothing).
    for n in range(2):
        seen = len(await consume_all(bootstrap, s.output, isolation_level="read_uncommitted"))
        victim = spawn(s, "txn-kill", tmp_path / f"victim{n}.log")
        try:
            await consume_until(
                bootstrap,
                s.output,
                seen + 3000,
                timeout=120,
                isolation_level="read_uncommitted",
            )
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
        finally:
            stop_process(victim)
        await s.produce(chunk, users=2000)
    committed_at_kill = len(await consume_all(bootstrap, s.output))
    assert committed_at_kill < total, "the processor finished before the kill; test proves nothing"

    survivor = spawn(s, "txn-kill", tmp_path / "survivor.log")
    try:
        values = await s.outputs(total, timeout=180)
        assert_exactly_once(values, total)
        assert await s.changelog_state() == s.expected
    finally:
        stop_process(survivor)
    assert survivor.returncode == 0, (tmp_path / "survivor.log").read_text()[-4000:]
    # Uncommitted leftovers of the killed instance exist, but read_committed never sees them.
    raw = await consume_all(bootstrap, s.output, isolation_level="read_uncommitted")
    assert len(raw) >= total


async def test_immediate_outputs_leave_before_the_commit_and_survive_kill_9(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Immediate topics skip the transaction: readable before the commit of their inputs.

    After kill -9 each input's output is there at least once (repeats are identical
    records from the replayed batches) and the state is exact.
    """
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "immediate")
    await s.create()
    # A commit interval far beyond the test: outputs can only show up by skipping it.
    early = s.processor("txn-immediate", immediate_topics=[s.output], commit_interval_ms=600_000)
    await early.start()
    try:
        await wait_for_async(lambda: early.ready, 60, description="ready")
        await s.produce(500)
        assert_exactly_once(await s.outputs(500), 500)  # read_committed readers see them
        assert early.stats.commits == 0
        assert await s.changelog_state() == {}
    finally:
        await early.stop()  # the final commit
    assert early.error is None
    assert await s.changelog_state() == s.expected

    total = 500 + 2 * 20_000
    await s.produce(20_000, users=2000)
    victim = spawn(s, "txn-immediate", tmp_path / "victim.log", immediate=True)
    try:
        await consume_until(bootstrap, s.output, 500 + 3000, timeout=120)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        stop_process(victim)
    await s.produce(20_000, users=2000)
    survivor = spawn(s, "txn-immediate", tmp_path / "survivor.log", immediate=True)
    try:

        async def all_there() -> bool:
            return len(set(await s.outputs(total, timeout=180))) >= total

        await wait_for_async(all_there, 180, description="an output for every input")
        values = await s.outputs(total)
        assert len(set(values)) == total  # none lost
        assert await s.changelog_state() == s.expected  # counted once
    finally:
        stop_process(survivor)
    assert survivor.returncode == 0, (tmp_path / "survivor.log").read_text()[-4000:]


async def test_two_instances_split_partitions_and_rebalance_keeps_counts(
    kafka_broker: KafkaBroker,
) -> None:
    """Rebalances (B joins, B leaves) while events keep arriving: counts stay exact."""
    bootstrap = kafka_broker.bootstrap_servers
    s = Scenario(bootstrap, "pair")
    await s.create()
    await s.produce(4000)
    a = s.processor("txn-pair-a")
    b = s.processor("txn-pair-b")
    stop_feeding = asyncio.Event()

    async def feed() -> None:
        while not stop_feeding.is_set():
            await s.produce(100)
            await asyncio.sleep(0.02)

    await a.start()
    feeder = asyncio.create_task(feed())
    try:
        try:
            await wait_for_async(lambda: _processed(a, 4000), 60, description="a processed 4000")
            await b.start()
            await wait_for_async(
                lambda: a.ready and b.ready and a.assigned_partitions and b.assigned_partitions,
                60,
                description="both instances own partitions",
            )
            assert a.assigned_partitions.isdisjoint(b.assigned_partitions)
            assert len(a.assigned_partitions | b.assigned_partitions) == PARTITIONS
            await wait_for_async(lambda: _processed(b, 500), 60, description="b processing")
            # B's partitions came from A's changelog; A kept its own without re-reading.
            assert b.stats.recovered_records > 0
            assert a.stats.reused_partitions > 0
            await b.stop()
            await wait_for_async(
                lambda: a.ready and len(a.assigned_partitions) == PARTITIONS,
                60,
                description="a owns all partitions again",
            )
            target = a.stats.events + 500
            await wait_for_async(lambda: _processed(a, target), 60, description="a continues")
        finally:
            stop_feeding.set()
            await feeder
            await b.stop()
        assert b.error is None
        assert_exactly_once(await s.outputs(s.produced), s.produced)
        await wait_for_async(lambda: a.table_items("counts") == s.expected, 30, description="a")
    finally:
        await a.stop()
    assert await s.changelog_state() == s.expected


# --------------------------------------------------------------------------- subprocess


def spawn(s: Scenario, txn: str, log: Path, *, immediate: bool = False) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "tests.integration.test_processing",
        "--bootstrap",
        s.bootstrap,
        "--group",
        s.group,
        "--transactional-id",
        txn,
        "--inputs",
        ",".join(s.inputs),
        "--output",
        s.output,
        *(["--immediate"] if immediate else []),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful stop) our child, SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def _serve(args: argparse.Namespace) -> None:
    processor = make_processor(
        args.bootstrap,
        args.group,
        args.inputs.split(","),
        args.output,
        args.transactional_id,
        immediate_topics=[args.output] if args.immediate else [],
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, processor.request_stop)
    await processor.run()


def main() -> None:
    import logging

    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--transactional-id", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--immediate", action="store_true", help="output skips transactions")
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
