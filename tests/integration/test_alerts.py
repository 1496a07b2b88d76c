"""Scored reviews on real Kafka through a real worker: an incident fires one alert episode and
later resolves it; a stable item raises nothing."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from ecomstream.alerts import QUICK_MODEL_PRESET
from ecomstream.testing.kafka import Record, consume_all, consume_until, produce_raw
from ecomstream.testing.worker import WorkerFactory
from tests.integration.test_recommendations import T0, score

pytestmark = pytest.mark.integration
MINUTE = 60_000


def alerts_of(records: list[Record], item: str) -> list[dict[str, Any]]:
    return [a for a in (orjson.loads(r.value) for r in records if r.value) if a["item_id"] == item]


# The quick model's preset runs the likelihood-ratio test on p_negative: the worker must
# take it from its alert_* settings, exactly as the offline evaluator does.
PRESETS = {
    "defaults": {},
    "quick-llr": {f"alert_{name}": value for name, value in QUICK_MODEL_PRESET.items()},
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_incident_fires_once_then_resolves_and_a_stable_item_stays_quiet(
    kafka_broker: Any, worker_factory: WorkerFactory, topic_prefix: str, preset: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    worker_factory(score_reviews="false", **PRESETS[preset])
    rng = random.Random(5)
    reviews: list[tuple[int, str, bool]] = []  # (ts, item, negative)
    for i in range(60):  # a stable item: about 10% negative all along, 6 hours
        reviews.append((T0 + i * 6 * MINUTE, "stable", rng.random() < 0.1))
    for i in range(15):  # the incident item: good for two hours ...
        reviews.append((T0 + i * 8 * MINUTE, "bad", False))
    for i in range(20):  # ... then a burst of negative reviews ...
        reviews.append((T0 + 150 * MINUTE + i * 30_000, "bad", True))
    for i in range(15):  # ... then good again
        reviews.append((T0 + 240 * MINUTE + i * 6 * MINUTE, "bad", False))
    reviews.sort()
    records = [
        (item.encode(), score(n, item, neg, ts)) for n, (ts, item, neg) in enumerate(reviews)
    ]
    await produce_raw(bootstrap, topic_prefix + "review-scores", records)

    topic = topic_prefix + "sentiment-alerts"
    await consume_until(
        bootstrap,
        topic,
        lambda rs: any(a["state"] == "resolved" for a in alerts_of(rs, "bad")),
        timeout=90,
    )
    everything = await consume_all(bootstrap, topic)
    bad = alerts_of(everything, "bad")
    firing = [a for a in bad if a["state"] == "firing"]
    resolved = [a for a in bad if a["state"] == "resolved"]
    assert len({a["episode_id"] for a in firing}) == 1, bad
    assert len(resolved) == 1 and resolved[0]["episode_id"] == firing[0]["episode_id"]
    assert firing[0]["window"]["start"] >= T0 + 120 * MINUTE  # not before the burst
    assert firing[0]["evidence"], "the most negative reviews as evidence"
    assert len({a["alert_id"] for a in bad}) == len(bad), "deterministic, distinct ids"
    assert alerts_of(everything, "stable") == []
    method = firing[0]["score"]["method"]
    assert method == ("llr" if preset == "quick-llr" else "wilson")
