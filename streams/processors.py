"""The batch processors the worker hosts: behaviour (per user) and items (per item).

Why not Faust agents: these carry every click at tens of thousands of events
per second with state; Faust's per-event path tops out near 4k/s here. They run
inside the Faust worker as services, exactly-once through Kafka transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from mode import Service

from ecomstream.alerts.config import AlertConfig
from ecomstream.config import Settings
from ecomstream.dataflows import BehaviourFlow, ItemFlow, ItemReplica, TopicNames
from ecomstream.dataflows.items import ITEMS
from ecomstream.events import Limits
from ecomstream.processing import BatchProcessor, ProcessorCrashed, changelog_topic
from ecomstream.processing.collector import FullCollections
from ecomstream.profiles.config import ProfileConfig
from ecomstream.recommend.pipeline import PipelineConfig
from ecomstream.recommend.recommender import RecommenderConfig


@dataclass(frozen=True)
class Processors:
    behaviour: BatchProcessor
    items: BatchProcessor
    replica: ItemReplica

    @property
    def all(self) -> tuple[BatchProcessor, ...]:
        return (self.behaviour, self.items)

    async def step(self) -> dict[str, int]:
        """One replay step through both stages (stepped mode): behaviour then items.

        Before each stage the item replica holds every item record committed so
        far, so rankings never see a partial step.
        """
        await self.replica.sync()
        behaviour = await self.behaviour.step()
        items = await self.items.step()
        await self.replica.sync()
        return {"behaviour": behaviour, "items": items}


def register_processors(app: faust.App, settings: Settings) -> Processors:
    names = TopicNames.from_settings(settings)
    group = f"{settings.topic_prefix}{settings.app_id}"
    # Every worker replicates the items table through its changelog (see ItemReplica).
    replica = ItemReplica(
        settings.bootstrap_servers,
        changelog_topic(f"{group}-items", ITEMS.name),
        native=settings.native,
        stepped=settings.stepped,
    )
    behaviour = BehaviourFlow(
        names,
        replica.index,
        prefix=settings.topic_prefix,
        limits=Limits(max_review_chars=settings.max_review_chars),
        pipeline=PipelineConfig(profile=ProfileConfig.from_env()),
        recommender=RecommenderConfig.from_env(),
    )
    items = ItemFlow(names, alerts=AlertConfig.from_env())
    # rocksdb://: tables in RocksDB with a cache of hot keys; memory://: tables in memory.
    tables: dict[str, Any] = {}
    if settings.store.startswith("rocksdb"):
        tables = {
            "state_dir": settings.data_dir / "tables",
            "cache_keys": settings.table_cache_keys,
        }
    processors = [
        BatchProcessor(
            settings.bootstrap_servers,
            f"{group}-behaviour",
            behaviour.input_topics,
            behaviour.tables,
            behaviour,
            transactional_id=f"{group}-behaviour-{settings.instance}",
            partitions=settings.partitions,
            commit_interval_ms=settings.commit_interval_ms,
            stepped=settings.stepped,
            # Updates are keyed, idempotent pushes with stable ids: latency over exactly-once.
            immediate_topics=(
                [names.recommendation_updates]
                if settings.recommendation_delivery == "immediate"
                else []
            ),
            **tables,
        ),
        BatchProcessor(
            settings.bootstrap_servers,
            f"{group}-items",
            items.input_topics,
            items.tables,
            items,
            transactional_id=f"{group}-items-{settings.instance}",
            partitions=settings.partitions,
            commit_interval_ms=settings.items_commit_interval_ms,
            stepped=settings.stepped,
            **tables,
        ),
    ]
    collections = (
        FullCollections(settings.full_gc_interval_s) if settings.full_gc_interval_s else None
    )
    # The items processor creates the changelog the replica reads; the behaviour
    # processor ranks against the replica.
    _host(app, collections, processors[1], replica, processors[0])
    return Processors(processors[0], processors[1], replica)


def _host(app: faust.App, collections: FullCollections | None, *parts: Any) -> None:
    """Start the parts with the worker, in order; stop them in reverse when it stops.

    With ``collections``, full garbage collections wait for idle moments (or their
    interval) instead of pausing a batch.
    """
    processors = [part for part in parts if isinstance(part, BatchProcessor)]

    @app.service
    class Processors(Service):
        async def on_start(self) -> None:
            for part in parts:
                await part.start()
                if isinstance(part, BatchProcessor):
                    self.add_future(self._supervise(part))
            if collections is not None:
                collections.install()

        @Service.timer(1.0)
        async def _collect_garbage(self) -> None:
            if collections is not None:
                collections.tick(sum(p.stats.events for p in processors))

        async def _supervise(self, processor: BatchProcessor) -> None:
            """A crashed processor crashes the worker: its supervisor restarts it, and state
            is rebuilt from the changelogs (nothing since the last commit was kept)."""
            try:
                await processor.wait()
            except ProcessorCrashed as exc:
                await self.crash(exc)

        async def on_stop(self) -> None:
            for part in reversed(parts):
                await part.stop()
            if collections is not None:
                collections.uninstall()
