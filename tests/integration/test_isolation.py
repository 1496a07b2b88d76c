"""Two apps on one cluster (different ``app_id``, same topics): each counts the shop's
events once. They share the contract topics; their internal topics are their own."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ecomstream.config import Settings
from ecomstream.launchers.process import wait_for_async
from ecomstream.processing import changelog_topic
from ecomstream.testing.kafka import consume_all, group_caught_up, produce_raw
from ecomstream.testing.worker import WorkerFactory

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000
REVIEWERS = 3


def score(i: int) -> tuple[bytes, bytes]:
    value = {
        "score_id": f"s{i}",
        "review_id": f"rv{i}",
        "event_id": f"re{i}",
        "user_id": f"reviewer{i}",
        "item_id": "i1",
        "category": "books",
        "rating": 2,
        "label": "negative",
        "probabilities": {"negative": 0.9, "positive": 0.1},
        "model": "test",
        "version": "1",
        "excerpt": "差",
        "ts": T0 + i,
        "scored_at": T0 + i,
        "latency_ms": 1.0,
    }
    return b"i1", orjson.dumps(value)


async def scores_per_reviewer(bootstrap: str, settings: Settings) -> dict[str, int]:
    """Scored reviews each reviewer's profile holds, from the app's profiles changelog."""
    group = f"{settings.topic_prefix}{settings.app_id}-behaviour"
    latest: dict[str, Any] = {}
    for r in await consume_all(bootstrap, changelog_topic(group, "profiles"), timeout=60):
        assert r.key is not None and r.value is not None
        latest[r.key.decode()] = orjson.loads(r.value)
    return {user: profile["r"][3] for user, profile in latest.items()}


async def test_second_app_on_the_same_topics_counts_each_review_once(
    kafka_broker: Any, worker_factory: WorkerFactory, topic_prefix: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    scores = [score(i) for i in range(REVIEWERS)]
    # One app after the other: the second starts once the first has forwarded every score
    # to its users, so a shared repartition topic would hand it the first one's records.
    for app_id in ("shop-a", "shop-b"):
        settings = Settings(topic_prefix=topic_prefix, app_id=app_id)
        worker_factory(app_id, app_id=app_id, score_reviews="false")
        if app_id == "shop-a":  # the first worker created the topics
            await produce_raw(bootstrap, topic_prefix + "review-scores", scores)
        group = f"{topic_prefix}{app_id}"
        by_user = settings.internal_topic("review-scores-by-user")

        async def done(group: str = group, by_user: str = by_user) -> bool:
            return await group_caught_up(
                bootstrap, f"{group}-items", [topic_prefix + "review-scores"]
            ) and await group_caught_up(bootstrap, f"{group}-behaviour", [by_user])

        await wait_for_async(done, timeout=90, interval=0.5, description=f"{app_id} caught up")
        assert await scores_per_reviewer(bootstrap, settings) == {
            f"reviewer{i}": 1 for i in range(REVIEWERS)
        }, app_id
