"""Create the contract's topics before a worker subscribes to them.

Why before: a Faust worker that subscribes to a topic that does not exist yet
ignores it for good ("Ignoring missing topic"), and broker-side creation is
asynchronous, so topics are created and awaited until every partition has a
leader, then the worker starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ecomstream.config import Settings
from ecomstream.events import INPUT_TOPICS

log = logging.getLogger(__name__)

OUTPUT_TOPICS = ("review-scores", "sentiment-alerts", "recommendation-updates", "dead-letters")
CONTRACT_TOPICS = (*INPUT_TOPICS, *OUTPUT_TOPICS)


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    *,
    partitions: int,
    replication_factor: int = 1,
    timeout: float = 60.0,
) -> None:
    """Create the missing topics and wait until each of their partitions has a leader."""
    wanted = list(dict.fromkeys(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            log.info("creating topics %s", ", ".join(missing))
            try:
                await admin.create_topics(
                    [NewTopic(n, partitions, replication_factor) for n in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another worker created them first
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            described = await admin.describe_topics(wanted)
            ready = {
                t["topic"]
                for t in described
                if t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
            }
            if ready >= set(wanted):
                return
            if loop.time() > deadline:
                raise TimeoutError(f"topics without leaders: {sorted(set(wanted) - ready)}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def ensure_contract_topics(settings: Settings) -> None:
    await ensure_topics(
        settings.bootstrap_servers,
        [settings.topic(n) for n in CONTRACT_TOPICS],
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
