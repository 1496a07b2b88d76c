"""A real worker on real Kafka: every valid event processed, every bad one dead-lettered."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from ecomstream import metrics
from ecomstream.deadletters import original_value
from ecomstream.launchers.process import wait_for_async
from ecomstream.testing.kafka import consume_all, consume_until, produce_raw
from ecomstream.testing.worker import WorkerFactory
from tests.unit.test_events import CLICK, PURCHASE, REVIEW

pytestmark = pytest.mark.integration

Message = tuple[str, bytes | None, bytes | None, str | None]  # topic, key, value, expected reason


def valid_messages(rng: random.Random, n: int) -> list[Message]:
    out: list[Message] = []
    templates = [("clicks", CLICK), ("purchases", PURCHASE), ("reviews", REVIEW)]
    for i in range(n):
        topic, template = templates[i % 3]
        user = f"u{rng.randrange(50)}"
        value = {**template, "event_id": f"e{i}", "user_id": user, "ts": template["ts"] + i}
        out.append((topic, user.encode(), orjson.dumps(value), None))
    return out


def hostile_messages(n_each: int) -> list[Message]:
    big = orjson.dumps({**REVIEW, "text": "坏" * 350_000})  # about 1 MB of UTF-8
    cases: list[tuple[str, bytes | None, str]] = [
        ("clicks", b'{"event_id": "x", ', "invalid_json"),
        ("clicks", orjson.dumps({**CLICK, "ts": "yesterday"}), "bad_timestamp"),
        ("purchases", orjson.dumps({**PURCHASE, "price": "cheap"}), "wrong_type"),
        ("purchases", orjson.dumps({k: v for k, v in PURCHASE.items() if k != "order_id"}),
         "missing_field"),
        ("reviews", orjson.dumps({**REVIEW, "rating": 9}), "out_of_range"),
        ("reviews", big, "too_large"),
        ("reviews", b'{"text": "\xc3\x28"}', "invalid_utf8"),
        ("clicks", b"", "empty"),
        ("purchases", None, "empty"),
        ("clicks", b"[]", "not_an_object"),
    ]  # fmt: skip
    return [(t, b"u1", v, reason) for _ in range(n_each) for t, v, reason in cases]


async def test_every_valid_event_is_processed_and_every_bad_one_dead_lettered(
    kafka_broker: Any, worker_factory: WorkerFactory, topic_prefix: str
) -> None:
    worker = worker_factory(score_reviews="false")
    rng = random.Random(7)
    messages = valid_messages(rng, 3_000) + hostile_messages(5)
    rng.shuffle(messages)

    expected: dict[tuple[str, int, int], tuple[bytes | None, str]] = {}
    for topic in ("clicks", "purchases", "reviews"):
        batch = [m for m in messages if m[0] == topic]
        sent = await produce_raw(
            kafka_broker.bootstrap_servers, topic_prefix + topic, [(k, v) for _, k, v, _ in batch]
        )
        for (_, _, value, reason), meta in zip(batch, sent, strict=True):
            if reason is not None:
                expected[(topic, meta.partition, meta.offset)] = (value, reason)
    n_valid = sum(1 for m in messages if m[3] is None)

    async def processed() -> bool:
        text = worker.metrics_text()
        return metrics.total(text, "ecomstream_events_processed_total") >= n_valid

    await wait_for_async(processed, timeout=120, interval=0.5, description="all valid processed")

    dead_letters = topic_prefix + "dead-letters"
    await consume_until(kafka_broker.bootstrap_servers, dead_letters, len(expected), timeout=60)
    records = [orjson.loads(r.value) for r in await consume_all(kafka_broker.bootstrap_servers,
                                                                 dead_letters)]  # fmt: skip
    seen = {(r["source"]["topic"], r["source"]["partition"], r["source"]["offset"]): r
            for r in records}  # fmt: skip
    assert len(records) == len(seen) == len(expected), "one dead letter per bad message"
    assert set(seen) == set(expected)
    for position, (value, reason) in expected.items():
        record = seen[position]
        assert record["reason"] == reason, (position, record["detail"])
        assert original_value(record) == value  # byte for byte; null stays null
        assert record["detail"]

    text = worker.metrics_text()
    assert metrics.total(text, "ecomstream_events_processed_total") == n_valid
    by_reason = Counter(reason for _, reason in expected.values())
    for reason, count in by_reason.items():
        assert metrics.total(text, "ecomstream_dead_letters_total", reason=reason) == count
    assert metrics.total(text, "ecomstream_events_consumed_total") == len(messages)
    assert worker.pid is not None and worker.is_ready(), "the worker keeps running"
