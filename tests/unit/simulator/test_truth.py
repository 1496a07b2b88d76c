"""The ground truth agrees with the stream: purchases, counts, catalog and incidents."""

from __future__ import annotations

from collections import Counter
from statistics import mean

from ecomstream.events import PurchaseEvent, ReviewEvent
from ecomstream.simulator import next_purchase_after
from tests.unit.simulator.conftest import Run


def test_truth_purchases_are_exactly_the_purchase_events(small_run: Run) -> None:
    from_events: dict[str, list[tuple[int, str, str]]] = {}
    for _, _, event in small_run.events:
        if isinstance(event, PurchaseEvent):
            from_events.setdefault(event.user_id, []).append(
                (event.ts, event.item_id, event.event_id)
            )
    from_truth = {
        user: [(p["ts"], p["item_id"], p["event_id"]) for p in purchases]
        for user, purchases in small_run.truth["purchases"].items()
    }
    assert from_truth == from_events


def test_truth_counts_match_the_stream(small_run: Run) -> None:
    counts = small_run.truth["counts"]
    assert counts["by_topic"] == dict(Counter(e.topic for e in small_run.events))
    assert counts["total"] == len(small_run.events)
    assert 0.01 < counts["session_conversion"] < 0.08  # a realistic funnel, not 20%


def test_truth_catalog_describes_every_item_in_the_stream(small_run: Run) -> None:
    catalog = small_run.truth["catalog"]
    assert len(catalog) == small_run.config.items
    assert len(small_run.truth["categories"]) == small_run.config.categories
    for _, _, event in small_run.events:
        assert catalog[event.item_id]["category"] == event.category
        if isinstance(event, PurchaseEvent):
            assert catalog[event.item_id]["price"] == event.price
    assert all(0.0 <= item["quality"] <= 1.0 for item in catalog.values())


def test_next_purchase_is_mostly_predictable_from_history(small_run: Run) -> None:
    """Purchases concentrate on the user's preferred categories (what recommenders learn)."""
    users = small_run.truth["users"]
    purchases = [p | {"user": u} for u, ps in small_run.truth["purchases"].items() for p in ps]
    in_taste = sum(p["category"] in users[p["user"]]["top_categories"] for p in purchases)
    assert in_taste / len(purchases) > 0.6
    first = purchases[0]
    later = next_purchase_after(small_run.truth, first["user"], first["ts"] - 1)
    assert later is not None and later["event_id"] == first["event_id"]


def _ratings(run: Run, item_id: str) -> list[tuple[int, int]]:
    return [
        (e.event.ts, e.event.rating)
        for e in run.events
        if isinstance(e.event, ReviewEvent) and e.event.item_id == item_id
    ]


def test_incident_reviews_turn_negative_and_recover(incident_run: Run) -> None:
    incidents = incident_run.truth["incidents"]
    assert "i0005" in {i["item_id"] for i in incidents} and len(incidents) == 2
    for incident in incidents:
        start, end = incident["start_ts"], incident["end_ts"]
        assert end == start + 50 * 60_000
        assert (
            incident_run.truth["catalog"][incident["item_id"]]["category"] == incident["category"]
        )
        ratings = _ratings(incident_run, incident["item_id"])
        before = [r for ts, r in ratings if ts < start]
        during = [r for ts, r in ratings if start <= ts < end]
        after = [r for ts, r in ratings if ts >= end]
        assert len(before) >= 3 and len(during) >= 3, (before, during)
        assert mean(during) < mean(before) - 1.0
        assert mean(during) <= 2.0
        if len(after) >= 3:
            assert mean(after) > mean(during) + 1.0


def test_random_incident_is_mid_run_on_a_featured_item(incident_run: Run) -> None:
    config = incident_run.config
    assert config.duration_s is not None
    randoms = [i for i in incident_run.truth["incidents"] if i["item_id"] != "i0005"]
    deals = {d["item_id"] for d in incident_run.truth["deals"]}
    for incident in randoms:
        offset_s = (incident["start_ts"] - config.start_ms) / 1000
        assert 0.3 * config.duration_s <= offset_s <= 0.65 * config.duration_s
        assert incident["item_id"] in deals
        assert incident["quality_before"] >= 0.6


def test_incident_item_is_reviewed_often_enough_to_detect(incident_run: Run) -> None:
    """The alert detector wants ≥ ~10 reviews per 30 minutes; check the busiest window."""
    incident = next(i for i in incident_run.truth["incidents"] if i["item_id"] != "i0005")
    stamps = [ts for ts, _ in _ratings(incident_run, incident["item_id"])]
    busiest = max(sum(1 for t in stamps if s <= t < s + 30 * 60_000) for s in stamps)
    assert busiest >= 5  # this test run has a fifth of the default users; defaults give ≥ 10
