from __future__ import annotations

from dataclasses import replace

import pytest

from ecomstream.profiles.config import CARTED, CLICKED, SEEN, WISHED
from ecomstream.profiles.profile import UserProfile
from ecomstream.profiles.scores import ReviewScore
from ecomstream.recommend.items import ItemDelta, ItemIndex
from ecomstream.recommend.recommender import (
    RecommendationUpdate,
    RecommenderConfig,
    is_spared,
    rank,
    recommend,
    recommend_popular,
    sentiment_multiplier,
    update_id,
)
from tests.unit.profiles.events import HOUR, T0

DAY = 24 * HOUR


def shop(*rows: tuple[str, str, float]) -> ItemIndex:
    index = ItemIndex()
    for item, cat, pop in rows:
        index.apply_delta(ItemDelta(item, cat, lm=T0, pop=pop))
    return index


def user(cats: dict[str, float], seen: dict[str, list[int]] | None = None) -> UserProfile:
    p = UserProfile("u1")
    p.cats, p.lm, p.ts = dict(cats), T0, T0
    p.seen = dict(seen or {})
    return p


def ids(ranked) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.item_id for r in ranked]


def test_covisited_items_of_recent_items_rank_first_with_a_reason() -> None:
    index = shop(("a", "books", 1.0), ("b", "books", 1.0), ("p", "books", 9.0))
    index.apply_delta(ItemDelta("a", lm=T0, nb={"b": 3.0}, nb_total=3.0))
    p = user({"books": 1.0}, {"a": [T0, CARTED]})
    ranked = rank(p, index, T0, RecommenderConfig(k=3, w_recent=0.0, diversity=1.0))
    assert ids(ranked) == ["b", "p", "a"]
    assert ranked[0].reasons[0] == "viewed together with a"
    assert ranked[1].reasons == ("popular in your category books",)


def test_recent_cart_items_come_back_with_their_reason() -> None:
    index = shop(("a", "books", 1.0))
    p = user({}, {"a": [T0, CARTED]})
    ranked = rank(p, index, T0, RecommenderConfig(k=1))
    assert ranked[0].item_id == "a" and ranked[0].reasons == ("still in your cart",)


def test_a_cart_item_stays_a_candidate_however_many_items_were_viewed_since() -> None:
    # Carted first, then 12 items viewed: the cart item is older than the 10 latest seeds.
    viewed = [f"v{i:02d}" for i in range(12)]
    index = shop(("cart", "books", 1.0), *((v, "books", 1.0) for v in viewed))
    seen = {"cart": [T0, CARTED]} | {v: [T0 + (i + 1) * 1000, SEEN] for i, v in enumerate(viewed)}
    p = user({"books": 1.0}, seen)
    now = T0 + 13 * 1000
    ranked = rank(p, index, now, RecommenderConfig(k=3))
    assert ranked[0].item_id == "cart" and ranked[0].reasons[0] == "still in your cart"
    # Without the rule the cart item only competes as one popular item among many.
    assert "cart" not in ids(rank(p, index, now, RecommenderConfig(k=3, held_seeds=None)))


def test_recently_bought_items_are_excluded_for_the_window_only() -> None:
    index = shop(("a", "books", 5.0), ("b", "books", 1.0))
    p = user({"books": 1.0})
    p.bought = {"a": T0 - 2 * DAY}
    assert ids(rank(p, index, T0, RecommenderConfig(k=2, exclude_bought_s=3 * 86400))) == ["b"]
    assert ids(rank(p, index, T0, RecommenderConfig(k=2, exclude_bought_s=86400))) == ["a", "b"]
    assert ids(rank(p, index, T0, RecommenderConfig(k=2, exclude_bought_s=0))) == ["a", "b"]
    assert recommend_popular(p, index, T0, RecommenderConfig(k=2, exclude_bought_s=3 * 86400)) == [
        "b"
    ]


def test_diversification_spreads_categories() -> None:
    rows = [(f"b{i}", "books", 10.0 - i) for i in range(5)] + [("t0", "toys", 6.0)]
    index = shop(*rows)
    p = user({"books": 0.9, "toys": 0.1})
    plain = rank(p, index, T0, RecommenderConfig(k=3, diversity=1.0))
    assert ids(plain) == ["b0", "b1", "b2"]
    spread = rank(p, index, T0, RecommenderConfig(k=3, diversity=0.2))
    assert ids(spread) == ["b0", "b1", "t0"]
    capped = rank(p, index, T0, RecommenderConfig(k=4, diversity=1.0, max_per_category=2))
    assert ids(capped) == ["b0", "b1", "t0"]  # the cap leaves the list short, not refilled
    scores = [r.score for r in spread]
    assert scores == sorted(scores, reverse=True)


def test_ties_break_on_item_id_and_output_is_deterministic() -> None:
    index = shop(("z", "books", 1.0), ("a", "books", 1.0), ("m", "books", 1.0))
    p = user({"books": 1.0})
    cfg = RecommenderConfig(k=3, diversity=1.0)
    first = rank(p, index, T0, cfg)
    assert ids(first) == ["a", "m", "z"]
    assert rank(p, index, T0, cfg) == first


def test_bad_reviews_and_incidents_make_items_sink() -> None:
    index = shop(("good", "books", 1.0), ("bad", "books", 1.2), ("hot", "books", 1.5))
    for i in range(6):
        index.apply_review_score(ReviewScore(f"r{i}", "x", "bad", "books", 0.9, 0.1, T0))
        index.apply_review_score(ReviewScore(f"s{i}", "x", "good", "books", 0.1, 0.9, T0))
    index.apply_alert("hot", True, T0)
    p = user({"books": 1.0})
    cfg = RecommenderConfig(k=3, diversity=1.0)
    with_sentiment = rank(p, index, T0, cfg)
    assert ids(with_sentiment) == ["good", "bad", "hot"]
    reasons = {r.item_id: r.reasons for r in with_sentiment}
    assert reasons["bad"][-1].startswith("demoted: negative reviews")
    assert reasons["hot"][-1] == "demoted: open quality incident"
    plain = rank(p, index, T0, RecommenderConfig(k=3, diversity=1.0, use_sentiment=False))
    assert ids(plain) == ["hot", "bad", "good"]


def test_sentiment_multiplier_is_neutral_without_reviews_and_bounded() -> None:
    index = shop(("a", "books", 1.0))
    record = index.get("a")
    assert record is not None
    assert sentiment_multiplier(record, T0, prior=0.8) == (1.0, None)
    for i in range(200):
        index.apply_review_score(ReviewScore(f"r{i}", "x", "a", "books", 1.0, 0.0, T0))
    m, _ = sentiment_multiplier(record, T0, prior=0.8, config=RecommenderConfig())
    assert m == RecommenderConfig().sentiment_floor
    m_later, _ = sentiment_multiplier(record, T0 + 30 * DAY, prior=0.8)
    assert m_later == pytest.approx(1.0, abs=1e-3)  # old reviews fade out


def test_a_cold_user_gets_the_shop_wide_popular_items() -> None:
    index = shop(("a", "books", 1.0), ("b", "toys", 2.0))
    ranked = rank(UserProfile("new"), index, T0, RecommenderConfig(k=5))
    assert ids(ranked) == ["b", "a"]
    assert ranked[0].reasons == ("popular in the shop",)


def test_update_ids_are_deterministic_and_distinct() -> None:
    assert update_id("u1", "e1") == update_id("u1", "e1")
    assert len({update_id("u1", "e1"), update_id("u1", "e2"), update_id("u2", "e1")}) == 3
    assert update_id("u1", "e1") != update_id("u1e", "1")  # a separator, not concatenation


def test_recommendation_update_json_round_trip() -> None:
    index = shop(("a", "books", 1.0), ("b", "books", 2.0))
    p = user({"books": 1.0}, {"a": [T0, SEEN]})
    update = recommend(p, index, "e7", T0 + 5)
    assert update.ts == T0 + 5 and update.trigger_event_id == "e7"
    assert update.update_id == update_id("u1", "e7")
    assert RecommendationUpdate.from_json(update.to_json()) == update
    assert update.profile["top_categories"] == [["books", 1.0]]


def _bad_shop() -> ItemIndex:
    """'hot' is the most popular item but has only negative recent reviews and an incident."""
    index = shop(("hot", "books", 3.0), ("b", "books", 2.0), ("c", "books", 1.0))
    for i in range(6):
        index.apply_review_score(ReviewScore(f"r{i}", "x", "hot", "books", 1.0, 0.0, T0))
        index.apply_review_score(ReviewScore(f"s{i}", "x", "b", "books", 0.0, 1.0, T0))
    index.apply_alert("hot", True, T0)
    return index


def test_an_item_in_the_users_cart_is_warned_about_not_sunk() -> None:
    index = _bad_shop()
    cfg = RecommenderConfig(k=3, diversity=1.0, w_recent=0.0)
    in_cart = user({"books": 1.0}, {"hot": [T0, CARTED]})
    ranked = rank(in_cart, index, T0, cfg)
    plain = rank(in_cart, index, T0, replace(cfg, use_sentiment=False))
    assert ids(ranked) == ids(plain) == ["hot", "b", "c"]
    assert ranked[0].score == plain[0].score
    assert ranked[0].reasons[-1] == "warning: open quality incident"
    # The same item merely viewed, or put back from the cart, or with sparing off: it sinks.
    for p, c in (
        (user({"books": 1.0}, {"hot": [T0, SEEN]}), cfg),
        (user({"books": 1.0}, {"hot": [T0, CLICKED]}), cfg),
        (in_cart, RecommenderConfig(k=3, diversity=1.0, w_recent=0.0, sentiment_spares=None)),
    ):
        sunk = rank(p, index, T0, c)
        assert ids(sunk) == ["b", "c", "hot"]
        assert sunk[-1].reasons[-1] == "demoted: open quality incident"


def test_sentiment_multiplier_spared_lifts_only_a_demotion() -> None:
    index = _bad_shop()
    hot, good = index.get("hot"), index.get("b")
    assert hot is not None and good is not None
    m, why = sentiment_multiplier(hot, T0, prior=0.8, spared=True)
    assert (m, why) == (1.0, "warning: open quality incident")
    assert sentiment_multiplier(good, T0, prior=0.5, spared=True) == sentiment_multiplier(
        good, T0, prior=0.5
    )


def test_good_reviews_do_not_lift_an_item_by_default() -> None:
    index = _bad_shop()
    good = index.get("b")
    assert good is not None
    assert sentiment_multiplier(good, T0, prior=0.5) == (1.0, None)
    boosted, why = sentiment_multiplier(
        good, T0, prior=0.5, config=RecommenderConfig(sentiment_ceiling=1.5)
    )
    assert boosted > 1.1 and why is not None and why.startswith("well reviewed")


def test_is_spared_follows_the_profile_strength() -> None:
    p = user({}, {"a": [T0, CARTED], "w": [T0, WISHED], "v": [T0, SEEN]})
    assert [is_spared(p, i, CARTED) for i in ("a", "w", "v", "x")] == [True, False, False, False]
    assert [is_spared(p, i, WISHED) for i in ("a", "w", "v")] == [True, True, False]
    assert not is_spared(p, "a", None)
