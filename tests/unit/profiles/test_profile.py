from __future__ import annotations

import math
import random

import pytest

from ecomstream.profiles.config import CARTED, CLICKED, SEEN, WISHED, ProfileConfig
from ecomstream.profiles.profile import (
    UserProfile,
    apply_accepted,
    apply_click,
    apply_event,
    apply_purchase,
    apply_review,
    apply_review_score,
    session_peers,
)
from ecomstream.profiles.scores import ReviewScore
from tests.unit.profiles.events import HOUR, MINUTE, T0, accepted, click, purchase, review

CFG = ProfileConfig(interest_half_life_s=3600)  # one hour, so decay shows in short tests


def test_interest_decays_with_the_configured_half_life() -> None:
    p = UserProfile("u1")
    apply_click(p, click(category="books", ts=T0), CFG)
    apply_click(p, click(item="i2", category="toys", ts=T0 + HOUR), CFG)
    interests = p.interests(config=CFG)
    assert interests["toys"] == pytest.approx(1.0)
    assert interests["books"] == pytest.approx(0.5)
    later = p.interests(now=T0 + 3 * HOUR, config=CFG)
    assert later["books"] == pytest.approx(0.125)


def test_interest_weights_follow_the_action() -> None:
    p = UserProfile("u1")
    apply_click(p, click(action="add_to_cart"), CFG)
    apply_click(p, click(category="toys", action="view"), CFG)
    apply_click(p, click(category="home", action="remove_from_cart"), CFG)
    assert p.interests(config=CFG) == {"books": 4.0, "toys": 1.0}


def test_out_of_order_events_give_the_in_order_interests() -> None:
    events = [
        click(category="books", ts=T0),
        click(category="toys", ts=T0 + 30 * MINUTE),
        click(category="books", ts=T0 + HOUR),
    ]
    in_order, shuffled = UserProfile("u1"), UserProfile("u1")
    for e in events:
        apply_click(in_order, e, CFG)
    for e in (events[2], events[0], events[1]):
        apply_click(shuffled, e, CFG)
    a, b = in_order.interests(config=CFG), shuffled.interests(config=CFG)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k])
    assert a["books"] == pytest.approx(1.5)  # the late T0 view adds 0.5, never 1


def test_a_late_event_never_raises_an_interest_above_a_fresh_one() -> None:
    p = UserProfile("u1")
    apply_click(p, click(category="books", ts=T0 + 2 * HOUR), CFG)
    apply_click(p, click(category="toys", ts=T0), CFG)  # two hours late
    interests = p.interests(config=CFG)
    assert interests["toys"] == pytest.approx(0.25)
    assert interests["toys"] < interests["books"] == 1.0
    assert p.ts == T0 + 2 * HOUR  # the clock never goes back


def test_interests_survive_a_rescale_far_in_the_future() -> None:
    p = UserProfile("u1")
    apply_click(p, click(category="books", ts=T0), CFG)
    apply_click(p, click(category="toys", ts=T0 + 45 * HOUR), CFG)
    assert p.lm == T0 + 45 * HOUR
    assert p.interests(config=CFG) == {"toys": 1.0}  # books decayed to 2^-45: dropped


def test_category_map_is_bounded() -> None:
    cfg = ProfileConfig(max_categories=4)
    p = UserProfile("u1", cfg)
    for i in range(10):
        apply_click(p, click(category=f"c{i}", action="add_to_cart" if i < 3 else "view"), cfg)
    assert len(p.cats) == 4
    assert {"c0", "c1", "c2"} <= set(p.cats)


def test_top_categories_are_shares_with_name_tie_break() -> None:
    p = UserProfile("u1")
    for cat in ("b", "a", "c", "c"):
        apply_click(p, click(category=cat), CFG)
    assert p.top_categories(2) == [("c", 0.5), ("a", 0.25)]


def test_windows_roll_over_bucket_by_bucket() -> None:
    p = UserProfile("u1")
    apply_click(p, click(ts=T0), CFG)
    apply_click(p, click(ts=T0 + 4 * MINUTE, action="click"), CFG)
    assert p.window_counts("1h", config=CFG)["view"] == 1
    assert p.window_counts("1h", config=CFG)["click"] == 1
    # 55 minutes later the first bucket is still one of the last 12 five-minute buckets…
    assert p.window_counts("1h", now=T0 + 59 * MINUTE, config=CFG)["view"] == 1
    # …and one hour after it, it has left the window (but not the 24 h one).
    apply_click(p, click(ts=T0 + HOUR), CFG)
    assert p.window_counts("1h", config=CFG)["view"] == 1
    assert p.window_counts("1h", config=CFG)["click"] == 0
    assert p.window_counts("24h", config=CFG)["view"] == 2
    assert p.window_counts("24h", now=T0 + 24 * HOUR, config=CFG)["view"] == 1
    assert p.window_counts("24h", now=T0 + 25 * HOUR, config=CFG)["view"] == 0


def test_window_buckets_are_bounded() -> None:
    p = UserProfile("u1")
    for i in range(200):  # one view every 10 minutes, 1990 minutes in all
        apply_click(p, click(ts=T0 + i * 10 * MINUTE), CFG)
        assert len(p.win[0]) <= 13 and len(p.win[1]) <= 25
    assert p.window_counts("1h", config=CFG)["view"] == 6  # minutes 1940..1990
    assert p.window_counts("24h", config=CFG)["view"] == 140  # hours 10..33: minutes 600..1990


def test_late_events_count_in_their_bucket_and_reads_keep_to_the_window() -> None:
    p = UserProfile("u1")
    apply_click(p, click(ts=T0 + 2 * HOUR), CFG)
    apply_click(p, click(ts=T0 + 90 * MINUTE), CFG)  # late, inside the last hour
    apply_click(p, click(ts=T0), CFG)  # late, outside the last hour
    assert p.window_counts("1h", config=CFG)["view"] == 2
    assert p.window_counts("24h", config=CFG)["view"] == 3
    apply_click(p, click(ts=T0 - 30 * HOUR), CFG)  # outside both
    assert p.window_counts("24h", config=CFG)["view"] == 3
    assert len(p.win[1]) <= 25


def test_window_counts_do_not_depend_on_arrival_order() -> None:
    """A backlog replay interleaves topics differently from a live run: same result."""
    times = [T0 + i * 7 * MINUTE for i in range(400)]  # about 47 hours of views
    in_order, shuffled = UserProfile("u1"), UserProfile("u1")
    for ts in times:
        apply_click(in_order, click(ts=ts), CFG)
    for ts in random.Random(3).sample(times, len(times)):
        apply_click(shuffled, click(ts=ts), CFG)
    assert in_order.win == shuffled.win


def test_purchases_and_reviews_are_counted_too() -> None:
    p = UserProfile("u1")
    apply_purchase(p, purchase(), CFG)
    apply_review(p, review(), CFG)
    counts = p.window_counts("1h", config=CFG)
    assert counts["purchase"] == 1 and counts["review"] == 1


def test_recent_items_are_distinct_bounded_and_most_recent_first() -> None:
    cfg = ProfileConfig(recent_seen=3)
    p = UserProfile("u1", cfg)
    for i, item in enumerate(("a", "b", "c", "a", "d")):
        apply_click(p, click(item=item, ts=T0 + i * MINUTE), cfg)
    assert p.recent_items() == ["d", "a", "c"]


def test_recent_items_keep_the_strongest_action() -> None:
    p = UserProfile("u1")
    apply_click(p, click(item="a", action="add_to_cart", ts=T0), CFG)
    apply_click(p, click(item="a", action="view", ts=T0 + 1), CFG)
    apply_click(p, click(item="b", action="click", ts=T0 + 2), CFG)
    apply_click(p, click(item="c", action="wishlist", ts=T0 + 3), CFG)
    apply_click(p, click(item="d", action="search", ts=T0 + 4), CFG)
    strengths = {item: s for item, _, s in p.recent_entries()}
    assert strengths == {"a": CARTED, "b": CLICKED, "c": WISHED, "d": SEEN}
    apply_click(p, click(item="a", action="remove_from_cart", ts=T0 + 5), CFG)
    assert p.recent_entries(1) == [("a", T0 + 5, CLICKED)]


def test_a_late_item_takes_its_place_in_time_or_drops_out() -> None:
    cfg = ProfileConfig(recent_seen=3)
    p = UserProfile("u1", cfg)
    for i, item in enumerate(("a", "b", "c")):
        apply_click(p, click(item=item, ts=T0 + 10 * i), cfg)
    apply_click(p, click(item="x", ts=T0 + 15), cfg)  # between b and c
    assert p.recent_items() == ["c", "x", "b"]
    apply_click(p, click(item="old", ts=T0 - 1), cfg)  # older than all kept
    assert p.recent_items() == ["c", "x", "b"]
    apply_click(p, click(item="c", action="add_to_cart", ts=T0 + 1), cfg)  # late, known item
    assert p.recent_entries(1) == [("c", T0 + 20, CARTED)]  # keeps its newer time


def test_recent_bought_is_bounded_and_deduplicated() -> None:
    cfg = ProfileConfig(recent_bought=2)
    p = UserProfile("u1", cfg)
    for i, item in enumerate(("a", "b", "a", "c")):
        apply_purchase(p, purchase(item=item, ts=T0 + i, order=f"o{i}"), cfg)
    assert p.recent_bought() == ["c", "a"]
    assert p.bought_since(T0 + 3) == {"c"}


def test_rfm_and_price_band() -> None:
    p = UserProfile("u1")
    apply_purchase(p, purchase(item="a", order="o1", price=100.0, quantity=2, ts=T0), CFG)
    apply_purchase(p, purchase(item="b", order="o1", price=100.0, ts=T0), CFG)
    apply_purchase(p, purchase(item="c", order="o2", price=400.0, ts=T0 + HOUR), CFG)
    assert (p.n_orders, p.n_lines, p.spend) == (2, 3, 700.0)
    assert (p.first_buy, p.last_buy) == (T0, T0 + HOUR)
    lo, hi = p.price_band() or (0.0, 0.0)
    assert lo < 100.0 < math.exp(p.price_mu) < hi < 400.0  # EWMA: the newest price pulls
    assert UserProfile("u2").price_band() is None


def test_reviews_and_review_scores_feed_the_averages() -> None:
    p = UserProfile("u1")
    apply_review(p, review(rating=5), CFG)
    apply_review(p, review(rating=2, category="toys"), CFG)
    apply_review_score(p, ReviewScore("r", "u1", "i1", "books", 0.2, 0.8, T0), CFG)
    apply_review_score(p, ReviewScore("r", "u1", "i1", "books", 0.6, 0.4, T0), CFG)
    assert p.avg_rating() == 3.5
    assert p.avg_sentiment() == pytest.approx(0.6)
    assert set(p.cats) == {"books"}  # only a good review adds interest


def test_session_peers_pair_each_new_item_once_with_the_latest_items() -> None:
    cfg = ProfileConfig(session_items=2)
    p = UserProfile("u1", cfg)
    seen = []
    for i, item in enumerate(("a", "b", "c", "b", "d")):
        e = click(item=item, ts=T0 + i)
        seen.append(session_peers(p, e, cfg))
        apply_click(p, e, cfg)
    assert seen == [(), ("a",), ("a", "b"), (), ("b", "c")]
    e = click(item="a", session="s2", ts=T0 + 10)
    assert session_peers(p, e, cfg) == ()  # a new session starts empty
    apply_click(p, e, cfg)
    late = click(item="z", session="s1", ts=T0 + 5)  # a late click of the old session
    assert session_peers(p, late, cfg) == ()
    apply_click(p, late, cfg)
    assert p.sess == "s2" and p.sess_items == ["a"]


def test_apply_accepted_skips_redelivered_offsets() -> None:
    p = UserProfile("u1")
    e = click()
    assert apply_accepted(p, accepted(e, 7), CFG)
    assert not apply_accepted(p, accepted(e, 7), CFG)
    assert not apply_accepted(p, accepted(e, 3), CFG)
    assert apply_accepted(p, accepted(purchase(), 3), CFG)  # other topic, own offsets
    assert apply_accepted(p, accepted(e, 2, partition=1), CFG)  # re-partitioned: start over
    assert p.window_counts("1h", config=CFG)["view"] == 2


def test_apply_event_dispatches_and_refuses_strangers() -> None:
    p = UserProfile("u1")
    apply_event(p, purchase(), CFG)
    assert p.n_lines == 1
    with pytest.raises(TypeError):
        apply_event(p, object(), CFG)  # type: ignore[arg-type]


def test_summary_is_json_ready() -> None:
    import orjson

    p = UserProfile("u1")
    apply_click(p, click(), CFG)
    apply_purchase(p, purchase(item="i2"), CFG)
    summary = p.summary(CFG)
    assert orjson.loads(orjson.dumps(summary))["recent_bought"] == ["i2"]
    assert summary["activity"]["1h"] == {"view": 1, "purchase": 1}
