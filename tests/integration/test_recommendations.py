"""A real worker on real Kafka: co-visited items are recommended, purchases excluded, and an
item with a burst of negative reviews sinks; the burst fires one sentiment alert episode."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ecomstream.processing import changelog_topic
from ecomstream.testing.kafka import Record, consume_all, consume_until, produce_raw
from ecomstream.testing.worker import WorkerFactory

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000
MINUTE = 60_000


def click(eid: str, user: str, session: str, item: str, ts: int, action: str = "view") -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "user_id": user,
            "session_id": session,
            "item_id": item,
            "category": "books",
            "action": action,
            "ts": ts,
        }
    )


def purchase(eid: str, user: str, item: str, ts: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "order_id": f"o-{eid}",
            "user_id": user,
            "item_id": item,
            "category": "books",
            "price": 20.0,
            "quantity": 1,
            "ts": ts,
        }
    )


def score(i: int, item: str, negative: bool, ts: int) -> bytes:
    p = 0.95 if negative else 0.05
    return orjson.dumps(
        {
            "score_id": f"s{i}",
            "review_id": f"rv{i}",
            "event_id": f"re{i}",
            "user_id": f"reviewer{i}",
            "item_id": item,
            "category": "books",
            "rating": 1 if negative else 5,
            "label": "negative" if negative else "positive",
            "probabilities": {"negative": p, "positive": 1 - p},
            "model": "test",
            "version": "1",
            "excerpt": "差" if negative else "好",
            "ts": ts,
            "scored_at": ts,
            "latency_ms": 1.0,
        }
    )


def updates_for(records: list[Record], user: str) -> list[dict[str, Any]]:
    return [v for v in (orjson.loads(r.value) for r in records if r.value) if v["user_id"] == user]


async def test_co_visited_items_recommended_bought_excluded_negative_item_sinks(
    kafka_broker: Any, worker_factory: WorkerFactory, topic_prefix: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    worker_factory(score_reviews="false")
    # Background shoppers: i1 is viewed together with i2 and i3 in many sessions.
    background = []
    for n in range(30):
        user, session, ts = f"bg{n}", f"bgs{n}", T0 + n * 1_000
        for j, item in enumerate(("i1", "i2" if n % 2 else "i3", "i4")):
            background.append((user.encode(), click(f"bg{n}-{j}", user, session, item, ts + j)))
    await produce_raw(bootstrap, topic_prefix + "clicks", background)
    await consume_until(
        bootstrap,
        changelog_topic(f"{topic_prefix}ecomstream-items", "items"),
        lambda rs: {r.key for r in rs} >= {b"i1", b"i2", b"i3"},
        timeout=60,
    )

    # The user views i1, buys i9: the update lists i1's companions and not i9.
    t = T0 + 10 * MINUTE
    await produce_raw(
        bootstrap,
        topic_prefix + "clicks",
        [
            (b"alice", click("a1", "alice", "as1", "i1", t)),
            (b"alice", click("a2", "alice", "as1", "i9", t + 1_000, "add_to_cart")),
        ],
    )
    await produce_raw(
        bootstrap,
        topic_prefix + "purchases",
        [(b"alice", purchase("a3", "alice", "i9", t + 2_000))],
    )
    topic = topic_prefix + "recommendation-updates"
    records = await consume_until(
        bootstrap,
        topic,
        lambda rs: any(u["trigger_event_id"] == "a3" for u in updates_for(rs, "alice")),
        timeout=60,
    )
    first = next(u for u in updates_for(records, "alice") if u["trigger_event_id"] == "a3")
    ranked = [i["item_id"] for i in first["items"]]
    assert {"i2", "i3"} <= set(ranked), ranked
    assert "i9" not in ranked, "just bought"
    reasons = {i["item_id"]: i["reasons"] for i in first["items"]}
    assert any("viewed together with i1" in r for r in reasons["i2"]), reasons["i2"]
    position_before = ranked.index("i2")

    # A burst of negative scored reviews for i2 (its history was positive).
    history = T0 - 4 * 60 * MINUTE  # hours of good reviews form i2's baseline
    scores = [(b"i2", score(i, "i2", False, history + i * 10 * MINUTE)) for i in range(12)]
    scores += [(b"i2", score(100 + i, "i2", True, t + 3 * MINUTE + i * 10_000)) for i in range(20)]
    await produce_raw(bootstrap, topic_prefix + "review-scores", scores)
    alerts = await consume_until(bootstrap, topic_prefix + "sentiment-alerts", 1, timeout=60)
    alert = orjson.loads(alerts[0].value)
    assert (alert["item_id"], alert["state"]) == ("i2", "firing")

    # Alice comes back later: i2 sinks, with the reason said.
    t2 = t + 30 * MINUTE
    await produce_raw(
        bootstrap, topic_prefix + "clicks", [(b"alice", click("a4", "alice", "as2", "i1", t2))]
    )
    await produce_raw(
        bootstrap,
        topic_prefix + "purchases",
        [(b"alice", purchase("a5", "alice", "i8", t2 + 1_000))],
    )
    records = await consume_until(
        bootstrap,
        topic,
        lambda rs: any(u["trigger_event_id"] == "a5" for u in updates_for(rs, "alice")),
        timeout=60,
    )
    second = next(u for u in updates_for(records, "alice") if u["trigger_event_id"] == "a5")
    ranked2 = [i["item_id"] for i in second["items"]]
    if "i2" in ranked2:
        assert ranked2.index("i2") > position_before, (ranked, ranked2)
        item = next(i for i in second["items"] if i["item_id"] == "i2")
        assert any(r.startswith("demoted") for r in item["reasons"]), item
    assert "i3" in ranked2

    # Exactly-once outputs: no duplicate update ids, one firing alert for the episode.
    all_updates = [orjson.loads(r.value) for r in await consume_all(bootstrap, topic)]
    ids = [u["update_id"] for u in all_updates]
    assert len(ids) == len(set(ids))
    fired = [
        orjson.loads(r.value)
        for r in await consume_all(bootstrap, topic_prefix + "sentiment-alerts")
    ]
    episodes = {a["episode_id"] for a in fired if a["item_id"] == "i2" and a["state"] == "firing"}
    assert len(episodes) == 1, fired  # a warning may escalate to critical within the episode


async def test_operator_settings_reach_the_recommender_and_the_debounce(
    kafka_broker: Any, worker_factory: WorkerFactory, topic_prefix: str
) -> None:
    """``ECOMSTREAM_RECOMMEND_K`` caps the list; an hour of ``ECOMSTREAM_PROFILE_DEBOUNCE_S``
    holds back the update that two new items would trigger after the default 30 s."""
    bootstrap = kafka_broker.bootstrap_servers
    worker_factory(score_reviews="false", recommend_k="2", profile_debounce_s="3600")
    background = [
        (f"bg{n}".encode(), click(f"bg{n}-{j}", f"bg{n}", f"bgs{n}", item, T0 + n * 1_000 + j))
        for n in range(10)
        for j, item in enumerate(("i1", "i2", "i3", "i4"))
    ]
    await produce_raw(bootstrap, topic_prefix + "clicks", background)
    await consume_until(
        bootstrap,
        changelog_topic(f"{topic_prefix}ecomstream-items", "items"),
        lambda rs: {r.key for r in rs} >= {b"i1", b"i2", b"i3", b"i4"},
        timeout=60,
    )
    t = T0 + 10 * MINUTE
    topic = topic_prefix + "recommendation-updates"

    async def produce_and_await(
        trigger: str, clicks: list[bytes], bought: list[bytes]
    ) -> list[Any]:
        await produce_raw(bootstrap, topic_prefix + "clicks", [(b"bob", c) for c in clicks])
        await produce_raw(bootstrap, topic_prefix + "purchases", [(b"bob", p) for p in bought])
        records = await consume_until(
            bootstrap,
            topic,
            lambda rs: any(u["trigger_event_id"] == trigger for u in updates_for(rs, "bob")),
            timeout=60,
        )
        return updates_for(records, "bob")

    await produce_and_await("b1", [click("b1", "bob", "bs1", "i1", t)], [])  # first signature
    # Two new items 2 minutes later (an update after the default 30 s), then a purchase
    # (always an update); one key, one partition: updates come in trigger order.
    bob = await produce_and_await(
        "b4",
        [
            click("b2", "bob", "bs1", "i2", t + 2 * MINUTE),
            click("b3", "bob", "bs1", "i4", t + 2 * MINUTE + 1_000),
        ],
        [purchase("b4", "bob", "i9", t + 3 * MINUTE)],
    )
    assert [u["trigger_event_id"] for u in bob] == ["b1", "b4"]
    assert all(1 <= len(u["items"]) <= 2 for u in bob), bob
