"""Item-side state, owned per item partition: popularity, co-visitation, sentiment, alerts.

Inputs are keyed by item_id: ``item-deltas`` (from the behaviour flow) and
``review-scores``. Per partition the flow keeps ``items`` (the recommender's
item records), ``sentiment`` (the alert detector's per-item windows and
episodes), ``categories`` (the category windows and baselines that give new
items their prior) and ``clock`` (the partition's stream time, which decides
what is too late) in changelogged tables, so a restart resumes the detector
exactly where it stood; it emits ``sentiment-alerts`` and re-keys each
score by user for the profiles. The ``items`` table's changelog (compacted, each
touched item once per commit) is also what :class:`ItemReplica` turns into each
worker's read-only index for ranking, as Faust's global tables do: one writer per
item, a replica per worker, and no second topic carrying the same records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from ecomstream import metrics
from ecomstream.alerts.baseline import CategoryState
from ecomstream.alerts.config import DEFAULT_CONFIG, AlertConfig
from ecomstream.alerts.detector import FIRING, ItemState, SentimentDetector
from ecomstream.alerts.monitor import SentimentMonitor
from ecomstream.alerts.records import ScoredReview, encode_alert
from ecomstream.dataflows.names import TopicNames
from ecomstream.processing import BatchContext, Record, TableSpec
from ecomstream.profiles.scores import parse_review_score
from ecomstream.recommend.items import (
    DEFAULT_ITEM_CONFIG,
    ItemConfig,
    ItemRecord,
    apply_alert,
    apply_delta,
    apply_review_score,
    decode_delta,
    decode_item,
    encode_item,
)
from ecomstream.recommend.native import Choice, NativeItemIndex, replica_index
from ecomstream.topics import partitions_of

log = logging.getLogger(__name__)

ITEMS: TableSpec[ItemRecord] = TableSpec(
    "items", encode=encode_item, decode=decode_item, mutable=True
)


CLOCK: TableSpec[int] = TableSpec("clock", encode=lambda ts: b"%d" % ts, decode=int)
_CLOCK_KEY = "stream"


def _state_table(detector: SentimentDetector) -> TableSpec[ItemState]:
    return TableSpec("sentiment", encode=ItemState.to_bytes, decode=detector.load, mutable=True)


def _category_table(config: AlertConfig) -> TableSpec[CategoryState]:
    return TableSpec(
        "categories",
        encode=CategoryState.to_bytes,
        decode=lambda raw: CategoryState.from_bytes(raw, config),
        mutable=True,
    )


class ItemFlow:
    def __init__(
        self,
        names: TopicNames,
        *,
        alerts: AlertConfig = DEFAULT_CONFIG,
        items: ItemConfig = DEFAULT_ITEM_CONFIG,
    ) -> None:
        self.names = names
        self.alert_config = alerts
        self.item_config = items
        self.detector = SentimentDetector(alerts)
        self.sentiment = _state_table(self.detector)
        self.categories = _category_table(alerts)
        self.tables = (ITEMS, self.sentiment, self.categories, CLOCK)
        self._monitors: dict[int, SentimentMonitor] = {}

    @property
    def input_topics(self) -> tuple[str, ...]:
        return (self.names.item_deltas, self.names.review_scores)

    def _monitor(self, ctx: BatchContext) -> SentimentMonitor:
        """The partition's detector, reading and writing its tables (views for this batch)."""
        states = ctx.table(self.sentiment)
        monitor = self._monitors.get(ctx.partition)
        if monitor is None:  # first batch since start or since recovery of this partition
            monitor = SentimentMonitor(self.alert_config)
            monitor.open = {k for k, v in states.items() if v.phase == FIRING}
            monitor.clock = ctx.table(CLOCK).get(_CLOCK_KEY, 0)
            self._monitors[ctx.partition] = monitor
        monitor.items = states  # type: ignore[assignment]  # dict-like views of the tables
        monitor.categories = ctx.table(self.categories)  # type: ignore[assignment]
        return monitor

    def __call__(self, ctx: BatchContext, records: Sequence[Record]) -> None:
        items = ctx.table(ITEMS)

        def record_of(item_id: str) -> ItemRecord:
            record = items.get(item_id)
            if record is None:
                record = items[item_id] = ItemRecord(item_id)
            return record

        scored: list[tuple[int, str, bytes, dict[str, Any]]] = []
        for r in records:
            if r.value is None or r.key is None:
                continue
            if r.topic == self.names.item_deltas:
                apply_delta(record_of(r.key.decode()), decode_delta(r.value), self.item_config)
                continue
            value = orjson.loads(r.value)
            if parse_review_score(value) is not None:
                scored.append((int(value["ts"]), str(value["review_id"]), r.value, value))
        # Event-time order, not arrival order: scores of one item arrive from many
        # scoring batches in any interleaving; the detector must not depend on it.
        scored.sort(key=lambda s: (s[0], s[1]))
        monitor: SentimentMonitor | None = None
        for _, _, raw, value in scored:
            score = parse_review_score(value)
            assert score is not None
            apply_review_score(record_of(score.item_id), score, self.item_config)
            ctx.send(self.names.review_scores_by_user, score.user_id.encode(), raw)
            monitor = monitor or self._monitor(ctx)
            observation = monitor.observe(ScoredReview.from_dict(value))
            if observation.too_late:
                metrics.SENTIMENT_LATE_REVIEWS.inc()
            for alert in observation.alerts:
                firing = alert.state == "firing"
                apply_alert(record_of(alert.item_id), firing, alert.ts)
                ctx.send(self.names.sentiment_alerts, alert.item_id.encode(), encode_alert(alert))
                metrics.SENTIMENT_ALERTS.labels(alert.state, alert.severity).inc()
        if monitor is not None:
            clock = ctx.table(CLOCK)
            if clock.get(_CLOCK_KEY) != monitor.clock:
                clock[_CLOCK_KEY] = monitor.clock
            metrics.SENTIMENT_ALERTS_OPEN.labels(str(ctx.partition)).set(len(monitor.open))

    def forget(self, partition: int) -> None:
        self._monitors.pop(partition, None)


class ItemReplica:
    """This worker's read-only copy of every item, fed by the ``items`` table's changelog.

    Why a replica: ranking a user's candidates needs any item's popularity,
    neighbours and sentiment without a remote call; the owner (:class:`ItemFlow`)
    is the only writer, so replicas never conflict.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        config: ItemConfig = DEFAULT_ITEM_CONFIG,
        native: Choice = "auto",
        stepped: bool = False,
    ):
        self.index = replica_index(config, native)
        # Stepped replays install each step's records at sync(), in (partition, offset)
        # order: a transaction's records become readable partition by partition, so the
        # order a consumer sees them in varies from run to run, and the index is not
        # order-free (a category's bounded top list admits against its current floor;
        # the sentiment prior is a float sum).
        self.stepped = stepped
        self._pending: list[tuple[int, int, bytes]] = []
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._progress = asyncio.Condition()
        self._positions: dict[TopicPartition, int] = {}
        self.records = 0

    async def sync(self, timeout: float = 60.0) -> None:
        """Return once every item record committed before the call is in the index.

        Stepped replays call it between steps, so a step ranks against exactly
        the item state the previous steps produced.
        """
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("replica not started")
        parts = sorted(consumer.assignment())
        ends = await consumer.end_offsets(parts)

        def caught_up() -> bool:
            return all(self._positions.get(tp, 0) >= end for tp, end in ends.items())

        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(caught_up), timeout)
            pending, self._pending = sorted(self._pending), []
        for _, _, value in pending:
            self.index.put_encoded(value)

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=50,  # the broker's 500 ms default delayed every replay step
        )
        partitions = await partitions_of(self.bootstrap_servers, self.topic)
        await consumer.start()
        consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer))
        log.info(
            "item replica of %s started; profiles, replica and ranking run in %s",
            self.topic,
            "Rust (native/)" if isinstance(self.index, NativeItemIndex) else "Python",
        )

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=5_000)
                for records in batches.values():
                    for r in records:
                        if r.value is None:
                            continue
                        if self.stepped:
                            self._pending.append((r.partition, r.offset, r.value))
                        else:
                            self.index.put_encoded(r.value)
                        self.records += 1
                positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
                async with self._progress:
                    self._positions = positions
                    self._progress.notify_all()
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
