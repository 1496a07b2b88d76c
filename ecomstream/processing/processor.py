"""BatchProcessor: consume batches, run a handler per partition, commit state + outputs + offsets.

The loop (steps marked * hold a lock shared with the rebalance callbacks)::

    * recover newly assigned partitions (changelog -> stores), resume them
      getmany(max_records=max_batch)
    * group records by partition number (input topics in the given order,
      offset order per topic) -> handler(ctx, records) per partition
    * every commit_interval_ms once the previous commit is done (or at
      max_uncommitted events): snapshot -> commit

The commit is pipelined: the snapshot (dirty keys encoded, outputs, offsets)
is taken between handler calls and written by a background task while the
next batches are processed; a commit waits for the previous one first. With
a ``transactional_id`` a commit is one Kafka transaction (see
:mod:`ecomstream.processing.commit`), so after any crash the committed
state, the outputs seen by ``read_committed`` readers and the group's
committed offsets all describe the same point of the input.

Rebalances (eager protocol, ``RangePartitionAssignor`` so every input
topic's partition ``p`` lands on the same member):

- revoked: wait for the in-flight commit, commit everything pending, wait
  until that commit is visible (offsets readable by the group, changelog
  end offsets past it), then keep the stores aside with the changelog end
  offsets of that moment. If the membership was already lost (the group
  moved on without us) nothing is committed and the stores are dropped.
- assigned: new partitions are paused; the loop recovers them before
  resuming. A store kept aside is reused when its changelog end offsets
  have not moved since; otherwise it is rebuilt from the changelog.

Failures: a handler exception is not retried; it crashes the processor (no
commit of anything since the last commit, clients closed, group left), and
:meth:`BatchProcessor.wait` / :meth:`BatchProcessor.run` raise
:class:`ProcessorCrashed`. The host restarts it; state comes back from the
changelog and processing resumes at the committed offsets. A failing
commit is aborted and retried with backoff (``commit_retries`` times) with
the same payload; a fenced producer (another instance took our
transactional id) crashes at once.

Guarantees and limits (transactional mode):

- Table state (as the changelog holds it), outputs as ``read_committed``
  readers see them, and the group's committed input offsets always agree:
  after a crash, kill -9, graceful restart or rebalance, nothing is lost,
  counted twice or output twice.
- Fencing comes from the transactional id: a restarted instance with the
  same id aborts its predecessor's open transaction and fences it.
  aiokafka lacks KIP-447 (its TxnOffsetCommit carries no group
  generation), so an instance that lost its membership without noticing yet
  (stalled longer than the session timeout) could still commit once for
  partitions already reassigned; a revoke after lost membership drops state
  without committing, which narrows that window but does not close it.
- An instance that dies and does not come back leaves at most one
  transaction open until ``transaction_timeout_ms`` (plus the broker's
  abort-check interval) passes; until then ``read_committed`` readers,
  including the new owner's recovery, stop just before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.structs import ConsumerRecord

from ecomstream import metrics
from ecomstream.processing.changelog import (
    FETCH_BYTES,
    ChangelogError,
    changelog_topic,
    end_offsets,
    ensure_changelogs,
    partition_counts,
    recovery_consumer,
    restore,
)
from ecomstream.processing.commit import (
    CommitPayload,
    RecordWriter,
    last_offsets,
    output_offsets,
    snapshot,
)
from ecomstream.processing.context import BatchContext, OutputRecord
from ecomstream.processing.stores import RocksStore
from ecomstream.processing.tables import PartitionStore, TableSpec

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handler: TypeAlias = Callable[[BatchContext, Sequence[Record]], Awaitable[None] | None]

_FATAL_PRODUCER_ERRORS = (
    ProducerFenced,
    OutOfOrderSequenceNumber,
    TransactionalIdAuthorizationFailed,
)


class ProcessorCrashed(RuntimeError):
    """The processor stopped on an error; its cause is ``__cause__``."""


@dataclass
class ProcessorStats:
    """Counters since start (for metrics and tests)."""

    events: int = 0
    batches: int = 0
    commits: int = 0
    commit_retries: int = 0
    changelog_records: int = 0
    outputs: int = 0
    recoveries: int = 0
    recovered_records: int = 0
    reused_partitions: int = 0
    rebalances: int = 0


@dataclass
class _Suspended:
    """Stores of a partition revoked cleanly, with the changelog end offsets after its commit."""

    stores: dict[str, PartitionStore[Any]]
    ends: dict[TopicPartition, int]


class BatchProcessor:
    """A batch stream processor over co-partitioned input topics, with changelogged tables.

    Arguments:
        bootstrap_servers: Kafka bootstrap address.
        group_id: the consumer group; also the prefix of the changelog topics
            (``{group_id}-{table}-changelog``) and the metrics' agent label.
        input_topics: co-partitioned inputs (same key, same partition count).
        tables: the tables; state partition ``p`` belongs to input partition ``p``.
        handler: ``handler(ctx, records)`` for one partition's records of a
            batch; plain or async. It must change state only through ``ctx``.
            ``records`` holds the first input topic's records of that
            partition, then the second's, ... each in offset order; there is
            no event-time interleaving across topics.
        transactional_id: stable per instance (e.g. ``f"{app_id}-{instance}"``):
            a restarted instance with the same id fences its predecessor and
            aborts its open transaction. ``None`` = at-least-once (no
            transactions; for comparison and for inputs that do not need it).
        max_batch: most records per ``getmany``.
        commit_interval_ms: time between commits (while events arrive).
        max_uncommitted: commit early once this many events wait for a commit.
        poll_timeout_ms: how long one ``getmany`` waits for records.
        session_timeout_ms / heartbeat_interval_ms: group membership timing.
        transaction_timeout_ms: the broker aborts a transaction left open
            this long (a crashed instance that does not come back).
        partitions: if given, the input partition count that must be found.
        changelog_replication_factor: replication of created changelog topics.
        commit_retries: attempts after a failed commit before crashing.
        client_id: prefix of the Kafka client ids.
        state_dir: keep tables in RocksDB under this directory, with the
            ``cache_keys`` most recently used keys per partition decoded in
            memory; None: tables entirely in memory.
        stepped: process only when :meth:`step` is called. Replays use it: the
            driver picks the batch boundaries, so outputs are a function of
            the input alone, not of fetch timing.
        immediate_topics: outputs to these topics skip the transaction: an
            idempotent producer sends them right after the batch that made
            them, so their latency is one batch, not a commit interval. Each
            commit waits for their acknowledgements before committing its
            offsets, so none is lost; after a crash the replayed batches send
            them again (at-least-once: same ids from a deterministic handler,
            though content read from other state may have moved on).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        input_topics: Sequence[str],
        tables: Sequence[TableSpec[Any]],
        handler: Handler,
        *,
        transactional_id: str | None,
        max_batch: int = 5000,
        commit_interval_ms: int = 100,
        max_uncommitted: int = 50_000,
        poll_timeout_ms: int = 100,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 1_000,
        transaction_timeout_ms: int = 10_000,
        partitions: int | None = None,
        changelog_replication_factor: int = 1,
        commit_retries: int = 5,
        client_id: str | None = None,
        state_dir: Path | None = None,
        cache_keys: int = 25_000,
        stepped: bool = False,
        immediate_topics: Collection[str] = (),
    ) -> None:
        if not input_topics:
            raise ValueError("at least one input topic is needed")
        names = [spec.name for spec in tables]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate table names in {names}")
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.input_topics = tuple(input_topics)
        self.transactional_id = transactional_id
        self.stats = ProcessorStats()
        self._specs: dict[str, TableSpec[Any]] = {spec.name: spec for spec in tables}
        self._changelogs = {name: changelog_topic(group_id, name) for name in self._specs}
        self._decoders = {self._changelogs[n]: s.decode for n, s in self._specs.items()}
        self._table_of = {topic: name for name, topic in self._changelogs.items()}
        self._handler = handler
        self._max_batch = max_batch
        self._commit_interval = commit_interval_ms / 1000
        self._max_uncommitted = max_uncommitted
        self._poll_timeout_ms = poll_timeout_ms
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._transaction_timeout_ms = transaction_timeout_ms
        self._expected_partitions = partitions
        self._replication_factor = changelog_replication_factor
        self._commit_retries = commit_retries
        self._client_id = client_id or group_id
        self._topic_order = {topic: i for i, topic in enumerate(self.input_topics)}
        self.stepped = stepped
        self._state_dir = state_dir / group_id if state_dir is not None else None
        self._cache_keys = cache_keys
        self._steps: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()
        self._outputs_written: dict[TopicPartition, int] = {}
        self._immediate_topics = frozenset(immediate_topics)
        self._immediate_sent: list[asyncio.Future[Any]] = []

        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._writer: RecordWriter | None = None
        self._immediate_producer: AIOKafkaProducer | None = None
        self._immediate_writer: RecordWriter | None = None
        self.partition_count = 0

        self._lock = asyncio.Lock()
        self._stores: dict[int, dict[str, PartitionStore[Any]]] = {}
        self._suspended: dict[int, _Suspended] = {}
        self._pending: set[int] = set()
        self._assigned: set[TopicPartition] = set()
        self._assignment_seen = False
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._changelog_written: dict[TopicPartition, int] = {}
        self._outputs: list[OutputRecord] = []
        self._uncommitted = 0
        self._moved_offsets = False  # commit points moved past control records only
        self._last_commit = time.monotonic()
        self._commit_task: asyncio.Task[None] | None = None

        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._started = False
        self._closed = False
        self._error: BaseException | None = None
        self._agent = group_id

    # ------------------------------------------------------------------ state

    @property
    def healthy(self) -> bool:
        """Started, loop running, no error."""
        return (
            self._started
            and self._error is None
            and self._task is not None
            and not self._task.done()
        )

    @property
    def ready(self) -> bool:
        """Healthy, a partition assignment arrived and every assigned partition is recovered."""
        return self.healthy and self._assignment_seen and not self._pending

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def assigned_partitions(self) -> frozenset[int]:
        """Input partition numbers whose state is live here."""
        return frozenset(self._stores)

    def table_items(self, table: str) -> dict[str, Any]:
        """A copy of one table's live state over all partitions here (tests, debugging)."""
        return {k: v for stores in self._stores.values() for k, v in stores[table].data.items()}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check topics, create changelogs, fence older producers, join the group, start the loop.

        Returns once the loop runs; :attr:`ready` turns true when assigned
        partitions are recovered.
        """
        if self._started:
            return
        counts = await partition_counts(self.bootstrap_servers, self.input_topics)
        missing = [t for t in self.input_topics if t not in counts]
        if missing:
            raise ChangelogError(f"input topics {missing} do not exist")
        if len(set(counts.values())) != 1:
            raise ChangelogError(f"input topics are not co-partitioned: {counts}")
        self.partition_count = next(iter(counts.values()))
        if self._expected_partitions not in (None, self.partition_count):
            raise ChangelogError(
                f"inputs have {self.partition_count} partitions, "
                f"expected {self._expected_partitions}"
            )
        if self._state_dir is not None:  # a previous process's stores: the changelogs rule
            shutil.rmtree(self._state_dir, ignore_errors=True)
        await ensure_changelogs(
            self.bootstrap_servers,
            list(self._changelogs.values()),
            self.partition_count,
            replication_factor=self._replication_factor,
        )
        try:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=f"{self._client_id}-producer",
                transactional_id=self.transactional_id,
                transaction_timeout_ms=self._transaction_timeout_ms,
                enable_idempotence=True,
                acks="all",
                linger_ms=0,
                # CONCURRENT_TRANSACTIONS right after a commit (markers still being
                # written) is normal; retry it quickly as the Java client does.
                retry_backoff_ms=20,
                max_batch_size=1024 * 1024,
                max_request_size=FETCH_BYTES // 2,
            )
            await self._producer.start()
            if self.transactional_id is not None:
                # Obtain the producer id now: the broker first completes (aborts)
                # whatever transaction a predecessor with this id left open, so
                # the changelogs and offsets read below are stable.
                await self._producer.begin_transaction()
                await self._producer.commit_transaction()
            self._writer = RecordWriter(self._producer)
            if self._immediate_topics:
                self._immediate_producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id=f"{self._client_id}-immediate",
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=0,
                    max_request_size=FETCH_BYTES // 2,
                )
                await self._immediate_producer.start()
                self._immediate_writer = RecordWriter(self._immediate_producer)
            self._reader = recovery_consumer(self.bootstrap_servers, f"{self._client_id}-restore")
            await self._reader.start()
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=f"{self._client_id}-consumer",
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                max_partition_fetch_bytes=FETCH_BYTES,
                fetch_max_wait_ms=50,
                max_poll_records=self._max_batch,
                session_timeout_ms=self._session_timeout_ms,
                heartbeat_interval_ms=self._heartbeat_interval_ms,
                partition_assignment_strategy=(RangePartitionAssignor,),
            )
            await self._consumer.start()
            self._consumer.subscribe(list(self.input_topics), listener=_Listener(self))
        except BaseException:
            await self._close_clients()
            raise
        self._started = True
        self._last_commit = time.monotonic()
        self._task = asyncio.create_task(self._loop(), name=f"processor-{self.group_id}")
        log.info(
            "processor %s started: inputs %s (%d partitions), tables %s, %s",
            self.group_id,
            list(self.input_topics),
            self.partition_count,
            list(self._specs),
            f"transactional id {self.transactional_id}"
            if self.transactional_id
            else "at-least-once",
        )

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the current batch, commit everything, leave the group, close the clients.

        Idempotent. After a crash it only closes the clients (nothing is
        committed). Safe to call from another task while the loop runs.
        """
        self._stopping.set()
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                log.error("processor %s loop did not stop in %.0fs", self.group_id, timeout)
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                self._error = self._error or TimeoutError("loop did not stop")
            except Exception:  # recorded in self._error by the loop
                pass
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: the error is self._error
        if self._started and not self._closed and self._error is None:
            try:
                async with self._lock:
                    await self._commit_now()
                    await self._wait_visible(self._assigned)
            except Exception as exc:
                log.exception("processor %s: final commit failed", self.group_id)
                self._error = exc
        if not self._closed:
            await self._close_clients()
            log.info("processor %s stopped (%s)", self.group_id, self.stats)
        while not self._steps.empty():
            waiting = self._steps.get_nowait()
            if not waiting.done():
                waiting.set_exception(ProcessorCrashed(f"processor {self.group_id} stopped"))

    def request_stop(self) -> None:
        """Ask the loop to stop after its current batch (safe from a signal handler).

        :meth:`run` then commits and closes; with :meth:`start`, call :meth:`stop`.
        """
        self._stopping.set()

    async def wait(self) -> None:
        """Wait for the loop to end; raise :class:`ProcessorCrashed` if it ended on an error."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)
        if self._error is not None:
            raise ProcessorCrashed(f"processor {self.group_id} crashed") from self._error

    async def run(self) -> None:
        """Start, process until stopped or crashed, stop. Cancelling it stops gracefully."""
        await self.start()
        try:
            await self.wait()
        finally:
            await asyncio.shield(self.stop())

    async def _close_clients(self) -> None:
        if self._closed:
            return
        self._closed = True
        commit_task = self._commit_task
        if commit_task is not None:
            if commit_task.done():
                if not commit_task.cancelled():
                    commit_task.exception()
            else:
                commit_task.cancel()
        for client in (self._consumer, self._reader, self._producer, self._immediate_producer):
            if client is not None:
                try:
                    await client.stop()
                except Exception:
                    log.exception("processor %s: closing %r failed", self.group_id, client)
        self._discard_all()

    # ------------------------------------------------------------------ loop

    async def _loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        stop_waiter = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                if self._pending:
                    async with self._lock:
                        if self._pending:
                            await self._recover()
                if self.stepped:
                    await self._serve_step(consumer, stop_waiter)
                    continue
                # Not under the lock: during a rebalance getmany waits for the new
                # assignment (however long), and the revoke callback needs the lock.
                batch = await self._poll(consumer, stop_waiter)
                if batch is None:
                    break
                async with self._lock:
                    self._check_commit_task()
                    if batch:
                        await self._process(batch)
                    else:
                        await self._pass_control_records(consumer)
                    if self._commit_due():
                        await self._start_commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error = exc
            log.exception("processor %s crashed; nothing since the last commit kept", self.group_id)
            await self._close_clients()
            raise
        finally:
            stop_waiter.cancel()

    # ------------------------------------------------------------------ stepped mode

    async def step(self) -> int:
        """Process everything committed to the inputs now, as one batch, and commit it.

        Returns the number of input records processed. When it returns, the
        outputs are visible to ``read_committed`` readers. Only in stepped mode.
        """
        if not self.stepped:
            raise RuntimeError(f"processor {self.group_id} is not in stepped mode")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._steps.put(done)
        return await done

    async def _serve_step(
        self, consumer: AIOKafkaConsumer, stop_waiter: asyncio.Future[Any]
    ) -> None:
        """Wait for a step request (waking up to recover new assignments), then run it."""
        request = asyncio.ensure_future(self._steps.get())
        await asyncio.wait(
            (request, stop_waiter),
            timeout=self._poll_timeout_ms / 1000,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not request.done():
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await request
            return
        done = request.result()
        try:
            count = await self._run_step(consumer)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            raise
        if not done.done():
            done.set_result(count)

    async def _run_step(self, consumer: AIOKafkaConsumer, timeout: float = 120.0) -> int:
        """Fetch every input partition up to its last stable offset of now; process; commit."""
        t0 = time.perf_counter()
        tps = sorted(self._assigned)
        targets: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
        collected: dict[TopicPartition, list[Record]] = {}
        deadline = time.monotonic() + timeout
        while behind := [tp for tp in tps if await consumer.position(tp) < targets[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"step of {self.group_id}: {behind} not read in {timeout}s")
            batch = await consumer.getmany(
                *behind, timeout_ms=self._poll_timeout_ms, max_records=self._max_batch
            )
            for tp, records in batch.items():
                kept = [r for r in records if r.offset < targets[tp]]
                if len(kept) < len(records):  # written after the step began: next step's
                    consumer.seek(tp, records[len(kept)].offset)
                collected.setdefault(tp, []).extend(kept)
        t1 = time.perf_counter()
        async with self._lock:
            self._check_commit_task()
            if collected:
                await self._process(collected)
            await self._pass_control_records(consumer)
            t2 = time.perf_counter()
            self._outputs_written = {}
            await self._commit_now()
            t3 = time.perf_counter()
            await self._wait_outputs_visible(self._outputs_written)
        t4 = time.perf_counter()
        log.debug(
            "step %s: fetch %.3fs, process %.3fs, commit %.3fs, visible %.3fs",
            *(self.group_id, t1 - t0, t2 - t1, t3 - t2, t4 - t3),
        )
        return sum(len(records) for records in collected.values())

    async def _wait_outputs_visible(
        self, written: dict[TopicPartition, int], timeout: float = 30.0
    ) -> None:
        """Wait until ``read_committed`` end offsets pass the last committed outputs."""
        reader = self._reader
        deadline = time.monotonic() + timeout
        while written and reader is not None:
            ends = await end_offsets(reader, list(written))
            written = {tp: offset for tp, offset in written.items() if ends[tp] <= offset}
            if written and time.monotonic() > deadline:
                raise TimeoutError(f"outputs of {self.group_id} not visible: {written}")
            if written:
                await asyncio.sleep(0.02)

    async def _poll(
        self, consumer: AIOKafkaConsumer, stop_waiter: asyncio.Future[Any]
    ) -> dict[TopicPartition, list[Record]] | None:
        """One getmany, abandoned (None) if a stop is requested while it waits."""
        fetch = asyncio.ensure_future(
            consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._max_batch)
        )
        await asyncio.wait((fetch, stop_waiter), return_when=asyncio.FIRST_COMPLETED)
        if fetch.done():
            return fetch.result()
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        return None

    async def _process(self, batch: dict[TopicPartition, list[Record]]) -> None:
        started = time.perf_counter()
        consumer = self._consumer
        assert consumer is not None
        order = self._topic_order
        by_partition: dict[int, list[Record]] = {}
        taken: list[tuple[TopicPartition, int]] = []
        count = 0
        for tp in sorted(batch, key=lambda tp: (tp.partition, order.get(tp.topic, 0))):
            records = batch[tp]
            if not records:
                continue
            if tp.partition not in self._stores or tp not in self._assigned:
                # Revoked while we waited for the lock, or assigned and not yet
                # recovered. getmany returned records starting at the position of
                # the assignment it served, so seeking back there loses nothing
                # (a new assignment resets positions to the committed offsets).
                if tp in consumer.assignment():
                    consumer.seek(tp, records[0].offset)
                continue
            found = by_partition.get(tp.partition)
            if found is None:
                by_partition[tp.partition] = records
            else:
                by_partition[tp.partition] = found + records
            taken.append((tp, records[-1].offset + 1))
            count += len(records)
        if not count:
            return
        handler = self._handler
        specs = self._specs
        outputs = self._outputs
        for partition, records in by_partition.items():
            stores = self._stores[partition]
            ctx = BatchContext(partition, specs, stores, outputs)
            result = handler(ctx, records)
            if inspect.isawaitable(result):
                await result
            for store in stores.values():
                store.trim()  # no handler holds a value now
        if self._immediate_writer is not None:
            await self._send_immediate(self._immediate_writer)
        positions = self._positions
        for tp, offset in taken:
            positions[tp] = offset
        self._uncommitted += count
        self.stats.events += count
        self.stats.batches += 1
        metrics.BATCH_SIZE.labels(agent=self._agent).observe(count)
        metrics.PROCESSING_SECONDS.labels(agent=self._agent).observe(time.perf_counter() - started)

    async def _pass_control_records(self, consumer: AIOKafkaConsumer) -> None:
        """Move commit points past the control records the consumer skipped.

        Why: a transactional input's last record is followed by its commit marker,
        which no fetch returns; committing that record's offset + 1 would leave the
        group one offset short of the end of every idle partition, and Kafka's lag
        tools and ``ecomstream_consumer_lag_messages`` would report it as lag
        forever. Between batches the consumer's position of a recovered partition is
        just past what was processed (or past the markers after it), so that is the
        commit point; Kafka's Java clients commit their position the same way.
        """
        positions, committed = self._positions, self._committed
        for tp in positions.keys() | committed.keys():
            if tp in self._assigned and tp.partition in self._stores:
                position = await consumer.position(tp)
                if position > positions.get(tp, committed.get(tp, position)):
                    positions[tp] = position
                    self._moved_offsets = True

    async def _send_immediate(self, writer: RecordWriter) -> None:
        """Send the queued outputs of immediate topics now (their acks are awaited at commit)."""
        topics = self._immediate_topics
        outputs = self._outputs
        now = [r for r in outputs if r.topic in topics]
        if now:
            outputs[:] = [r for r in outputs if r.topic not in topics]
            self._immediate_sent += await writer.send_outputs(now)
            self.stats.outputs += len(now)

    # ------------------------------------------------------------------ commits

    def _snapshot(self) -> CommitPayload:
        payload = snapshot(
            self._changelogs,
            self._specs,
            self._stores,
            self._outputs,
            self._positions,
            self._committed,
        )
        self._outputs.clear()
        payload.immediate, self._immediate_sent = self._immediate_sent, []
        self._uncommitted = 0
        self._moved_offsets = False
        self._last_commit = time.monotonic()
        return payload

    def _check_commit_task(self) -> None:
        task = self._commit_task
        if task is not None and task.done():
            self._commit_task = None
            task.result()  # raises the commit's error

    async def _await_commit(self) -> None:
        task = self._commit_task
        if task is not None:
            self._commit_task = None
            await task

    def _commit_due(self) -> bool:
        """The interval passed (and the previous commit is done), or too much is uncommitted.

        While a commit is in flight, batches keep flowing instead of queueing behind
        it: a due commit starts with the first batch after it finishes.
        """
        if not self._uncommitted and not self._moved_offsets:
            return False
        if self._uncommitted >= self._max_uncommitted:
            return True
        in_flight = self._commit_task is not None and not self._commit_task.done()
        return not in_flight and time.monotonic() - self._last_commit >= self._commit_interval

    async def _start_commit(self) -> None:
        """Wait for the previous commit, snapshot, and write it in the background."""
        await self._await_commit()
        payload = self._snapshot()
        if not payload.empty:
            self._commit_task = asyncio.create_task(self._write(payload))

    async def _commit_now(self) -> None:
        """Wait for the in-flight commit, then commit everything pending (call under the lock)."""
        await self._await_commit()
        payload = self._snapshot()
        if not payload.empty:
            await self._write(payload)

    async def _write(self, payload: CommitPayload) -> None:
        """Write one payload, retrying transient failures; crash on fatal ones.

        Immediate outputs are not retried here: their producer already
        retried, so a failure crashes the processor, and the restart replays
        the uncommitted batches, which sends them again.
        """
        if payload.immediate:
            await asyncio.gather(*payload.immediate)
            self._outputs_written.update(output_offsets(payload.immediate))
        attempt = 0
        while True:
            try:
                if self.transactional_id is not None:
                    await self._write_transaction(payload)
                else:
                    await self._write_at_least_once(payload)
                break
            except asyncio.CancelledError:
                raise
            except _FATAL_PRODUCER_ERRORS:
                raise
            except KafkaError as exc:
                attempt += 1
                if attempt > self._commit_retries:
                    raise
                self.stats.commit_retries += 1
                log.warning(
                    "processor %s: commit failed (%r); retry %d/%d",
                    self.group_id,
                    exc,
                    attempt,
                    self._commit_retries,
                )
                await self._abort_quietly(exc)
                await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
        self._committed.update(payload.offsets)
        self.stats.commits += 1
        self.stats.outputs += len(payload.outputs)
        self.stats.changelog_records += payload.changelog_count
        for tp, records in payload.changelog.items():
            metrics.CHANGELOG_RECORDS.labels(table=self._table_of[tp.topic]).inc(len(records))
        self._update_gauges()

    async def _write_transaction(self, payload: CommitPayload) -> None:
        producer, writer = self._producer, self._writer
        assert producer is not None and writer is not None
        await producer.begin_transaction()
        outputs = await writer.send_outputs(payload.outputs)
        sent = await writer.send_changelog(payload.changelog)
        if payload.offsets:
            await producer.send_offsets_to_transaction(payload.offsets, self.group_id)
        await producer.commit_transaction()
        self._changelog_written.update(last_offsets(sent))
        self._outputs_written.update(output_offsets(outputs))

    async def _write_at_least_once(self, payload: CommitPayload) -> None:
        producer, writer, consumer = self._producer, self._writer, self._consumer
        assert producer is not None and writer is not None and consumer is not None
        futures = await writer.send_outputs(payload.outputs)
        sent = await writer.send_changelog(payload.changelog)
        for group in sent.values():
            futures += group
        await asyncio.gather(*futures)
        self._changelog_written.update(last_offsets(sent))
        if payload.offsets:
            try:
                await consumer.commit(dict(payload.offsets))
            except KafkaError as exc:  # at-least-once: the next commit carries them again
                log.warning("processor %s: offset commit failed: %r", self.group_id, exc)
                for tp in payload.offsets:
                    self._committed.pop(tp, None)
                payload.offsets.clear()

    async def _abort_quietly(self, cause: BaseException) -> None:
        producer = self._producer
        if self.transactional_id is None or producer is None:
            return
        try:
            await producer.abort_transaction()
        except Exception as exc:
            raise cause from exc

    async def _wait_visible(self, tps: Iterable[TopicPartition], timeout: float = 10.0) -> bool:
        """Wait until our last commit for these input partitions is what others would read.

        Why: ``commit_transaction`` returns when the coordinator decided; the
        markers that make records and offsets visible follow shortly after.
        A new owner that read before them would restore an older state and
        replay outputs already committed.
        """
        consumer, reader = self._consumer, self._reader
        if consumer is None or reader is None:
            return False
        inputs = {tp for tp in tps if tp in self._committed}
        partitions = {tp.partition for tp in tps}
        changelog = {
            tp: offset
            for tp, offset in self._changelog_written.items()
            if tp.partition in partitions
        }
        deadline = time.monotonic() + timeout
        while True:
            pending_inputs = set()
            for tp in inputs:
                if await consumer.committed(tp) != self._committed[tp]:
                    pending_inputs.add(tp)
            ends = await end_offsets(reader, list(changelog))
            pending_changelog = {tp for tp, offset in changelog.items() if ends[tp] <= offset}
            if not pending_inputs and not pending_changelog:
                return True
            if time.monotonic() > deadline:
                log.warning(
                    "processor %s: commit not visible after %.0fs (offsets %s, changelog %s)",
                    self.group_id,
                    timeout,
                    pending_inputs,
                    pending_changelog,
                )
                return False
            await asyncio.sleep(0.02)

    def _update_gauges(self) -> None:
        for name in self._specs:
            keys = sum(len(stores[name]) for stores in self._stores.values())
            metrics.TABLE_KEYS.labels(table=name).set(keys)
        consumer = self._consumer
        if consumer is None:
            return
        for tp in self._assigned:
            high = consumer.highwater(tp)
            position = self._positions.get(tp)
            if high is not None and position is not None:
                metrics.CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(high - position, 0)
                )

    # ------------------------------------------------------------------ rebalance

    def _membership_lost(self) -> bool:
        """True if the group already dropped us (our partitions may be someone else's now)."""
        coordinator = getattr(self._consumer, "_coordinator", None)
        generation = getattr(coordinator, "generation", 0)
        return isinstance(generation, int) and generation < 0

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            self.stats.rebalances += 1
            if self._error is not None or self._closed or not revoked:
                return
            partitions = {tp.partition for tp in revoked}
            try:
                lost = self._membership_lost()
                if lost:
                    log.warning(
                        "processor %s: membership lost; dropping uncommitted state of %s",
                        self.group_id,
                        sorted(partitions),
                    )
                    with contextlib.suppress(Exception):
                        await self._await_commit()
                    self._drop_uncommitted()
                else:
                    await self._commit_now()
                    visible = await self._wait_visible(revoked)
                    await self._suspend(partitions, keep=visible)
            except Exception as exc:
                self._error = exc
                log.exception("processor %s: commit on revoke failed", self.group_id)
                self._stopping.set()
                return
            for tp in revoked:
                self._positions.pop(tp, None)
                self._committed.pop(tp, None)
            self._assigned -= revoked
            self._pending -= partitions

    def _drop_uncommitted(self) -> None:
        """Forget everything not committed: all stores (changed in place) and queued outputs."""
        self._outputs.clear()
        self._immediate_sent = []  # sent already: the next owner's replay repeats them
        self._uncommitted = 0
        self._discard_all()
        self._positions.clear()

    async def _suspend(self, partitions: set[int], *, keep: bool) -> None:
        reader = self._reader
        assert reader is not None
        moving = {p: self._stores.pop(p) for p in partitions if p in self._stores}
        if not keep or not moving:
            for stores in moving.values():
                self._discard(stores)
            return
        tps = [TopicPartition(self._changelogs[name], p) for p in moving for name in self._specs]
        ends = await end_offsets(reader, tps)
        for p, stores in moving.items():
            mine = {tp: ends[tp] for tp in tps if tp.partition == p}
            self._suspended[p] = _Suspended(stores, mine)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            if self._error is not None or self._closed:
                return
            consumer = self._consumer
            assert consumer is not None
            partitions = {tp.partition for tp in assigned}
            lonely = sorted(
                (topic, p)
                for p in partitions
                for topic in self.input_topics
                if TopicPartition(topic, p) not in assigned
            )
            if lonely:
                self._error = ChangelogError(
                    f"assignment is not co-partitioned: missing {lonely} in {sorted(assigned)}"
                )
                log.error("processor %s: %s", self.group_id, self._error)
                self._stopping.set()
                return
            self._assigned = set(assigned)
            self._assignment_seen = True
            for p in list(self._suspended):
                if p not in partitions:
                    self._discard(self._suspended.pop(p).stores)
            new = partitions - set(self._stores)
            self._pending |= new
            if new:
                consumer.pause(*[tp for tp in assigned if tp.partition in new])
            log.info(
                "processor %s: assigned partitions %s (%d to recover)",
                self.group_id,
                sorted(partitions),
                len(new),
            )

    async def _recover(self) -> None:
        """Bring pending partitions' stores up to their changelogs' end offsets; resume them."""
        reader, consumer = self._reader, self._consumer
        assert reader is not None and consumer is not None
        partitions = sorted(self._pending)
        started = time.perf_counter()
        tps = [TopicPartition(self._changelogs[n], p) for p in partitions for n in self._specs]
        ends = await end_offsets(reader, tps)
        ready: dict[int, dict[str, PartitionStore[Any]]] = {}
        to_read: dict[TopicPartition, PartitionStore[Any]] = {}
        reused = []
        for p in partitions:
            kept = self._suspended.pop(p, None)
            mine = [tp for tp in tps if tp.partition == p]
            if kept is not None and all(kept.ends.get(tp) == ends[tp] for tp in mine):
                ready[p] = kept.stores
                reused.append(p)
                continue
            if kept is not None:
                self._discard(kept.stores)
            stores = self._new_stores(p)
            for name in self._specs:
                to_read[TopicPartition(self._changelogs[name], p)] = stores[name]
            ready[p] = stores
        count = await restore(reader, to_read, self._decoders, ends)
        self._stores.update(ready)
        self._pending.difference_update(partitions)
        inputs = [tp for tp in self._assigned if tp.partition in ready]
        consumer.resume(*inputs)
        self.stats.recoveries += 1
        self.stats.recovered_records += count
        self.stats.reused_partitions += len(reused)
        self._update_gauges()
        log.info(
            "processor %s: partitions %s ready (%d changelog records read, %s reused) in %.2fs",
            self.group_id,
            partitions,
            count,
            reused,
            time.perf_counter() - started,
        )

    def _new_stores(self, partition: int) -> dict[str, PartitionStore[Any]]:
        if self._state_dir is None:
            return {name: PartitionStore() for name in self._specs}
        return {
            name: PartitionStore(
                RocksStore(
                    self._state_dir / f"{name}-{partition}-{uuid.uuid4().hex[:8]}",
                    spec.encode,
                    spec.decode,
                    cache_keys=self._cache_keys,
                )
            )
            for name, spec in self._specs.items()
        }

    @staticmethod
    def _discard(stores: dict[str, PartitionStore[Any]]) -> None:
        for store in stores.values():
            store.close()

    def _discard_all(self) -> None:
        for stores in [*self._stores.values(), *(s.stores for s in self._suspended.values())]:
            self._discard(stores)
        self._stores.clear()
        self._suspended.clear()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, processor: BatchProcessor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._processor.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._processor.on_assigned(set(assigned))
