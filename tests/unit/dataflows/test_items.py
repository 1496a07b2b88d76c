"""The item flow resumes from its tables: a restart between batches changes no output."""

from __future__ import annotations

import random
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from ecomstream.alerts.config import AlertConfig
from ecomstream.config import Settings
from ecomstream.dataflows import ItemFlow, TopicNames
from ecomstream.processing import BatchContext, OutputRecord, PartitionStore

NAMES = TopicNames.from_settings(Settings())
T0 = 1_767_225_600_000
MINUTE = 60_000
CONFIG = AlertConfig(min_reviews=4, min_negative=3)


def _score(i: int, item: str, ts: int, negative: bool) -> dict[str, Any]:
    return {
        "review_id": f"r{i:05d}",
        "user_id": f"u{i % 37}",
        "item_id": item,
        "category": "home",
        "label": "negative" if negative else "positive",
        "probabilities": {"negative": 0.9 if negative else 0.1},
        "ts": ts,
        "text": "差" if negative else "好",
    }


def _batches() -> list[list[dict[str, Any]]]:
    """Six hours of a category's reviews; a new item (i9) goes bad in hour four, and some
    reviews arrive late (one of them past the grace period)."""
    rng = random.Random(3)
    scores = []
    for i in range(600):
        ts = T0 + i * 36_000
        item = f"i{i % 5}"
        negative = rng.random() < 0.15
        if i >= 400 and i % 3 == 0:
            item, negative = "i9", rng.random() < 0.8
        scores.append(_score(i, item, ts, negative))
    scores.append(_score(900, "i1", T0 + 300 * 36_000 - 10 * MINUTE, True))  # too late
    scores.append(_score(901, "i1", T0 + 500 * 36_000 - MINUTE, True))  # late, in grace
    scores.sort(key=lambda s: s["review_id"])
    return [scores[i : i + 50] for i in range(0, len(scores), 50)]


def _records(scores: list[dict[str, Any]], topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    out = []
    for offset, s in enumerate(scores):
        key, value = s["item_id"].encode(), orjson.dumps(s)
        out.append(ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, 0, 0, []))
    return out


def _run(flow: ItemFlow, stores: dict[str, PartitionStore[Any]], batch: list[Any]) -> list[Any]:
    outputs: list[OutputRecord] = []
    specs = {t.name: t for t in flow.tables}
    flow(BatchContext(0, specs, stores, outputs), _records(batch, flow.names.review_scores))
    return [(o.topic, o.key, o.value) for o in outputs]


def _recovered(flow: ItemFlow, stores: dict[str, PartitionStore[Any]]) -> dict[str, Any]:
    """New stores filled the way recovery fills them: encoded values, decoded."""
    fresh: dict[str, PartitionStore[Any]] = {}
    for spec in flow.tables:
        store = PartitionStore[Any]()
        encoded = [(k.encode(), spec.encode(v)) for k, v in stores[spec.name].data.items()]
        store.restore(encoded, spec.decode)
        fresh[spec.name] = store
    return fresh


def _tables(flow: ItemFlow, stores: dict[str, PartitionStore[Any]]) -> dict[str, Any]:
    return {
        spec.name: {k: spec.encode(v) for k, v in sorted(stores[spec.name].data.items())}
        for spec in flow.tables
    }


def test_a_restart_between_batches_gives_the_outputs_and_state_of_an_uninterrupted_run() -> None:
    names = NAMES
    batches = _batches()
    steady = ItemFlow(names, alerts=CONFIG)
    steady_stores = {t.name: PartitionStore[Any]() for t in steady.tables}
    expected = [out for batch in batches for out in _run(steady, steady_stores, batch)]
    alerts = [o for o in expected if o[0] == names.sentiment_alerts]
    assert alerts, "the scenario must raise an alert to prove anything"

    flow = ItemFlow(names, alerts=CONFIG)
    stores = {t.name: PartitionStore[Any]() for t in flow.tables}
    got: list[Any] = []
    for n, batch in enumerate(batches):
        if n in (4, 9):  # restart: a new flow, state only from the tables' encoded records
            flow = ItemFlow(names, alerts=CONFIG)
            stores = _recovered(flow, stores)
        got += _run(flow, stores, batch)
    assert got == expected
    assert _tables(flow, stores) == _tables(steady, steady_stores)
    assert {"categories", "clock"} <= set(_tables(flow, stores))
