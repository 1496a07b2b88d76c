"""The real local Kafka broker: started by our launcher, driven by independent clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ecomstream.launchers.kafka import (
    KAFKA_VERSION,
    KafkaBroker,
    KafkaError,
    fetch_metadata,
    new_cluster_id,
    render_pom,
)
from ecomstream.launchers.process import cmdline_mentions, is_alive
from ecomstream.testing.kafka import (
    consume_all,
    consume_until,
    create_topics,
    free_port_pair,
    produce_raw,
)

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    """A topic/group name no other test (or rerun on the same broker) uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_broker_answers_admin_requests(kafka_broker: KafkaBroker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        assert [b["port"] for b in cluster["brokers"]] == [kafka_broker.port]
        assert cluster["cluster_id"] == kafka_broker.cluster_id()
    finally:
        await admin.close()
    assert kafka_broker.metadata().cluster_id == kafka_broker.cluster_id()
    assert KAFKA_VERSION.startswith("4.")


async def test_produce_and_consume_with_aiokafka(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("roundtrip")
    await create_topics(bootstrap, [topic], partitions=3)
    sent: list[tuple[bytes | None, bytes | None]]
    sent = [(f"user-{i % 30}".encode(), f"event-{i}".encode()) for i in range(100)]
    sent += [(None, b"no key"), (b"tombstone", None)]
    await produce_raw(bootstrap, topic, sent, headers=[("source", b"test")])

    records = await consume_until(bootstrap, topic, len(sent))

    assert sorted((r.key or b"", r.value or b"") for r in records) == sorted(
        (k or b"", v or b"") for k, v in sent
    )
    assert {r.partition for r in records} == {0, 1, 2}
    assert all(r.headers == (("source", b"test"),) for r in records)
    # Same key, same partition, in send order.
    user0 = [r for r in records if r.key == b"user-0"]
    assert len({r.partition for r in user0}) == 1
    assert [r.value for r in user0] == [v for k, v in sent if k == b"user-0"]
    everything = await consume_all(bootstrap, topic)
    assert sorted((r.partition, r.offset) for r in everything) == sorted(
        (r.partition, r.offset) for r in records
    )


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
async def test_kcat_produces_and_aiokafka_reads(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("kcat")
    await create_topics(bootstrap, [topic], partitions=2)
    lines = "".join(f"k{i}:v{i}\n" for i in range(20))
    result = subprocess.run(
        ["kcat", "-P", "-b", bootstrap, "-t", topic, "-K:", "-X", "acks=all"],
        input=lines.encode(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()

    records = await consume_until(bootstrap, topic, 20)

    assert sorted((r.key, r.value) for r in records) == sorted(
        (f"k{i}".encode(), f"v{i}".encode()) for i in range(20)
    )


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
async def test_aiokafka_produces_and_kcat_reads(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("to-kcat")
    await produce_raw(bootstrap, topic, [(b"k", f"v{i}".encode()) for i in range(5)])  # auto-create
    result = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-f", "%k=%s\\n", "-o", "beginning"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == [f"k=v{i}" for i in range(5)]


async def test_consumer_group_commits_and_resumes(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic, group = kafka_broker.bootstrap_servers, unique("group"), unique("g")
    await create_topics(bootstrap, [topic], partitions=1)
    await produce_raw(bootstrap, topic, [(None, f"m{i}".encode()) for i in range(10)])
    tp = TopicPartition(topic, 0)

    async def consumer() -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        )
        await c.start()
        return c

    first = await consumer()
    try:
        message = await asyncio.wait_for(first.getone(), 30)  # joins the group
        assert message.value == b"m0"
        await first.commit({tp: 6})  # pretend m0..m5 were processed
        assert await first.committed(tp) == 6
    finally:
        await first.stop()

    second = await consumer()
    try:
        resumed = await asyncio.wait_for(second.getone(), 30)
    finally:
        await second.stop()
    assert (resumed.offset, resumed.value) == (6, b"m6")


async def test_idempotent_producer(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("idempotent")
    await create_topics(bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(50):
            await producer.send(topic, key=str(i % 5).encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    records = await consume_all(bootstrap, topic)
    assert sorted(int(r.value or b"") for r in records) == list(range(50))


async def test_transactions_hide_aborted_records(kafka_broker: KafkaBroker) -> None:
    """Faust's exactly-once mode needs the transaction coordinator (single-replica log)."""
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("txn")
    await create_topics(bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique("tx"))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"after")
    finally:
        await producer.stop()

    committed = await consume_all(bootstrap, topic)
    everything = await consume_all(bootstrap, topic, isolation_level="read_uncommitted")
    assert [r.value for r in committed] == [b"committed", b"after"]
    assert b"aborted" in [r.value for r in everything]


async def test_one_megabyte_message(kafka_broker: KafkaBroker) -> None:
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("big")
    big = os.urandom(1024 * 1024 + 512)  # a 1 MiB review plus envelope
    await create_topics(bootstrap, [topic], partitions=1)
    await produce_raw(bootstrap, topic, [(b"small", b"x"), (b"big", big), (b"small", b"y")])

    records = await consume_until(bootstrap, topic, 3)

    assert [r.value for r in records] == [b"x", big, b"y"]


async def test_old_and_future_event_timestamps_are_kept(kafka_broker: KafkaBroker) -> None:
    """Replayed history and simulated future event time must be accepted as they are."""
    bootstrap, topic = kafka_broker.bootstrap_servers, unique("timestamps")
    old, future = 1_262_304_000_000, int(time.time() * 1000) + 365 * 86_400_000  # 2010, +1y
    await produce_raw(bootstrap, topic, [(b"old", b"1")], timestamp_ms=old)
    await produce_raw(bootstrap, topic, [(b"future", b"2")], timestamp_ms=future)

    records = await consume_until(bootstrap, topic, 2)

    assert {r.key: r.timestamp for r in records} == {b"old": old, b"future": future}


async def test_restart_on_same_data_dir_keeps_messages(
    kafka_broker_factory: Callable[..., KafkaBroker],
) -> None:
    broker = kafka_broker_factory()
    bootstrap = broker.start()
    cluster_id, topic = broker.cluster_id(), unique("durable")
    await produce_raw(bootstrap, topic, [(b"k", f"v{i}".encode()) for i in range(10)])
    pid = broker.pid()
    assert pid is not None

    assert broker.stop()
    assert not is_alive(pid)
    assert broker.pid() is None

    # Same data dir, new ports: data and identity survive.
    port, controller_port = free_port_pair()
    again = kafka_broker_factory(
        data_dir=broker.data_dir, port=port, controller_port=controller_port
    )
    bootstrap = again.start()
    assert again.pid() not in (None, pid)
    assert again.cluster_id() == cluster_id
    records = await consume_all(bootstrap, topic)
    assert [r.value for r in records] == [f"v{i}".encode() for i in range(10)]


def test_start_failure_raises_with_log_tail(
    kafka_broker_factory: Callable[..., KafkaBroker],
) -> None:
    broker = kafka_broker_factory(config={"authorizer.class.name": "no.such.Authorizer"})
    with pytest.raises(KafkaError, match=r"(?s)exited during startup.*no\.such\.Authorizer"):
        broker.start(timeout=60)
    assert broker.pid() is None
    assert not broker.pidfile.path.exists()


def test_cli_up_status_down_leaves_no_process(tmp_path: Path) -> None:
    port, controller_port = free_port_pair()
    data_dir = tmp_path / "kafka"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ecomstream", "kafka", *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=180,
        )

    up = cli("up", "--port", str(port), "--controller-port", str(controller_port), "--fast-start")
    pid = int((data_dir / "kafka.pid").read_text()) if up.returncode == 0 else None
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip().splitlines()[-1] == f"127.0.0.1:{port}"
        assert pid is not None and is_alive(pid)  # outlived the CLI process

        again = cli("up")  # default port differs: the running broker's address wins
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
        assert again.stdout.strip().splitlines()[-1] == f"127.0.0.1:{port}"

        status = cli("status")
        assert status.returncode == 0 and f"pid {pid}" in status.stdout

        down = cli("down")
        assert down.returncode == 0, down.stderr
        assert not is_alive(pid)  # gone (at most an unreaped zombie of init's)
        assert not cmdline_mentions(pid, str(data_dir))
        assert not (data_dir / "kafka.pid").exists()

        assert cli("down").returncode == 0  # not running: no error
        assert cli("status").returncode == 1
    finally:
        if pid is not None and is_alive(pid):
            KafkaBroker.from_data_dir(data_dir).stop()


def test_cluster_ids_are_safe_command_line_arguments() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_pom_pins_the_broker_and_its_log4j2_binding() -> None:
    pom = render_pom()
    assert f"<artifactId>kafka_2.13</artifactId>\n      <version>{KAFKA_VERSION}</version>" in pom
    assert "<artifactId>log4j-slf4j-impl</artifactId>" in pom


async def test_metadata_probe_sees_topics_without_creating_them(
    kafka_broker: KafkaBroker,
) -> None:
    bootstrap, topic, absent = kafka_broker.bootstrap_servers, unique("probe"), unique("absent")
    await create_topics(bootstrap, [topic], partitions=3)
    meta = fetch_metadata(kafka_broker.host, kafka_broker.port, topics=[topic, absent])
    assert dict(meta.topics) == {topic: (0, 1, 2)}
    again = fetch_metadata(kafka_broker.host, kafka_broker.port, topics=[absent])
    assert absent not in again.topics
    with pytest.raises(TimeoutError, match="to exist"):
        await consume_until(bootstrap, absent, 1, timeout=0.5)
