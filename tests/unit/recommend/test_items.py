from __future__ import annotations

import random

import pytest

from ecomstream.profiles.scores import ReviewScore
from ecomstream.recommend.items import (
    ALL,
    CategoryTop,
    ItemConfig,
    ItemDelta,
    ItemIndex,
    ItemRecord,
    alert_state,
    apply_alert,
    apply_delta,
    apply_review_score,
    decode_delta,
    decode_item,
    encode_delta,
    encode_item,
)
from tests.unit.profiles.events import HOUR, T0

CFG = ItemConfig(half_life_s=3600, sentiment_half_life_s=3600, max_neighbours=4, category_top=3)


def score(item: str, neg: float, ts: int) -> ReviewScore:
    return ReviewScore("r", "u", item, "books", neg, 1.0 - neg, ts)


def test_deltas_fold_in_with_decay_whatever_their_order() -> None:
    deltas = [
        ItemDelta("i1", "books", lm=T0, pop=1.0, nb={"i2": 1.0}, nb_total=1.0),
        ItemDelta("i1", "books", lm=T0 + HOUR, pop=1.0, nb={"i2": 1.0, "i3": 2.0}, nb_total=3.0),
    ]
    a, b = ItemRecord("i1"), ItemRecord("i1")
    for d in deltas:
        apply_delta(a, d, CFG)
    for d in reversed(deltas):
        apply_delta(b, d, CFG)
    at = T0 + HOUR
    for r in (a, b):
        assert r.pop * 2 ** ((r.lm - at) / 3_600_000) == pytest.approx(1.5)
        assert r.cooccurrence("i2") == pytest.approx(1.5 / 3.5)
        assert r.cooccurrence("i3") == pytest.approx(2.0 / 3.5)


def test_neighbours_are_bounded_and_keep_the_strongest() -> None:
    r = ItemRecord("i0")
    for j in range(1, 40):
        apply_delta(r, ItemDelta("i0", lm=T0, nb={f"n{j:02d}": float(j)}, nb_total=float(j)), CFG)
        assert len(r.nb) < 4 + 4 // 2
    assert [n for n, _ in r.top_neighbours(2)] == ["n39", "n38"]
    assert r.nb_total == sum(range(1, 40))  # shares stay true after evictions
    assert r.cooccurrence("n39") == pytest.approx(39 / 780)


def test_top_neighbours_cache_follows_updates() -> None:
    r = ItemRecord("i0")
    apply_delta(r, ItemDelta("i0", lm=T0, nb={"a": 2.0, "b": 1.0}, nb_total=3.0), CFG)
    assert r.top_neighbours(1) == [("a", 2.0)]
    apply_delta(r, ItemDelta("i0", lm=T0, nb={"b": 5.0}, nb_total=5.0), CFG)
    assert r.top_neighbours(1) == [("b", 6.0)]


def test_rescale_far_ahead_keeps_ratios() -> None:
    r = ItemRecord("i0")
    apply_delta(r, ItemDelta("i0", lm=T0, pop=1.0, nb={"a": 1.0}, nb_total=1.0), CFG)
    apply_delta(r, ItemDelta("i0", lm=T0 + 50 * HOUR, pop=1.0, nb={"b": 1.0}, nb_total=1.0), CFG)
    assert r.lm == T0 + 50 * HOUR
    assert r.pop == pytest.approx(1.0)
    assert set(r.nb) == {"b"}  # "a" decayed to nothing
    assert r.cooccurrence("b") == pytest.approx(1.0)


def test_category_top_is_bounded_and_exact() -> None:
    rng = random.Random(3)
    top = CategoryTop(3)
    truth: dict[str, float] = {}
    for _ in range(300):
        item = f"i{rng.randrange(20)}"
        truth[item] = truth.get(item, 0.0) + rng.random()  # values only grow, as records do
        top.offer(item, truth[item], T0, 3_600_000)
        assert len(top.scores) < 6
    best = sorted(truth.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [i for i, _ in top.top(3)] == [i for i, _ in best]


def test_index_keeps_popularity_per_category_and_shop_wide() -> None:
    index = ItemIndex(CFG)
    for item, cat, pop in [("a", "books", 3.0), ("b", "books", 1.0), ("c", "toys", 2.0)]:
        index.apply_delta(ItemDelta(item, cat, lm=T0, pop=pop))
    assert index.top("books", 5) == [("a", 3.0), ("b", 1.0)]
    assert [i for i, _ in index.top(ALL, 2)] == ["a", "c"]
    assert index.top("nothing", 5) == []


def test_sentiment_counts_decay_and_the_prior_is_shop_wide() -> None:
    index = ItemIndex(CFG)
    index.apply_review_score(score("a", 1.0, T0))
    index.apply_review_score(score("a", 0.0, T0 + HOUR))
    index.apply_review_score(score("b", 0.0, T0 + HOUR))
    neg, pos = index.get("a").sentiment_counts(T0 + HOUR, CFG)  # type: ignore[union-attr]
    assert (neg, pos) == (pytest.approx(0.5), pytest.approx(1.0))
    assert index.sentiment_prior(T0 + HOUR) == pytest.approx(2.0 / 2.5)
    assert ItemIndex(CFG).sentiment_prior(T0) == 0.5


def test_alerts_open_and_close_the_incident_newest_first() -> None:
    r = ItemRecord("a")
    apply_alert(r, True, T0 + 10)
    apply_alert(r, False, T0 + 5)  # older than the last alert: ignored
    assert r.incident
    apply_alert(r, False, T0 + 20)
    assert not r.incident
    assert alert_state({"item_id": "a", "state": "resolved", "ts": 3}) == ("a", False, 3)
    assert alert_state({"state": "firing"}) is None


def test_codecs_round_trip() -> None:
    r = ItemRecord("a", "books")
    apply_delta(
        r, ItemDelta("a", "books", lm=T0, pop=2.5, nb={"b": 1.25}, nb_total=2.0, price=9.9), CFG
    )
    apply_review_score(r, score("a", 0.3, T0), CFG)
    apply_alert(r, True, T0)
    assert decode_item(encode_item(r)) == r
    d = ItemDelta("a", "", lm=T0, nb={"b": 0.1}, nb_total=0.1)
    assert decode_delta(encode_delta(d)) == d


def test_a_replica_fed_by_the_changelog_answers_like_the_owner() -> None:
    owner, replica = ItemIndex(CFG), ItemIndex(CFG)
    rng = random.Random(5)
    for i in range(200):
        item = f"i{rng.randrange(12)}"
        if rng.random() < 0.8:
            record = owner.apply_delta(
                ItemDelta(
                    item,
                    f"c{int(item[1:]) % 3}",
                    lm=T0 + i * 60_000,
                    pop=rng.random(),
                    nb={f"i{rng.randrange(12)}": 1.0},
                    nb_total=1.0,
                )
            )
        else:
            record = owner.apply_review_score(score(item, rng.random(), T0 + i * 60_000))
        replica.put(decode_item(encode_item(record)))  # what the global table delivers
    for cat in ("c0", "c1", "c2", ALL):
        assert replica.top(cat, 3) == owner.top(cat, 3)
    assert replica.sentiment_prior(T0) == pytest.approx(owner.sentiment_prior(T0))
    assert all(replica.get(i) == owner.get(i) for i in owner.records)
