"""The event stream: valid per the topic contract, time-ordered, funnel-consistent."""

from __future__ import annotations

from collections import Counter

from ecomstream.data.corpus import ReviewCorpus
from ecomstream.events import Action, ClickEvent, PurchaseEvent, ReviewEvent, decode_event
from ecomstream.simulator.sinks import event_json
from tests.unit.simulator.conftest import Run


def test_every_event_validates_with_decode_event(small_run: Run) -> None:
    for topic, key, event in small_run.events:
        decoded = decode_event(topic, event.to_json())
        assert decoded == event, decoded
        assert key == event.user_id


def test_fast_serializer_gives_the_same_bytes_as_to_json(small_run: Run) -> None:
    for _, _, event in small_run.events[:2_000]:
        assert event_json(event) == event.to_json()


def test_topics_match_event_types_and_all_three_occur(small_run: Run) -> None:
    kinds = {"clicks": ClickEvent, "purchases": PurchaseEvent, "reviews": ReviewEvent}
    for topic, _, event in small_run.events:
        assert isinstance(event, kinds[topic])
    counts = Counter(e.topic for e in small_run.events)
    assert set(counts) == set(kinds)
    assert counts["clicks"] > counts["purchases"] > counts["reviews"] > 0


def test_events_are_in_event_time_order_within_the_run(small_run: Run) -> None:
    stamps = [e.event.ts for e in small_run.events]
    assert stamps == sorted(stamps)
    config = small_run.config
    assert config.end_ms is not None
    assert config.start_ms <= stamps[0] and stamps[-1] < config.end_ms


def test_ids_are_unique_and_deterministic_in_shape(small_run: Run) -> None:
    ids = [e.event.event_id for e in small_run.events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("e7-") for i in ids)
    reviews = [e.event.review_id for e in small_run.events if isinstance(e.event, ReviewEvent)]
    assert len(set(reviews)) == len(reviews)
    assert small_run.events[0].event.user_id.startswith("u") and len(small_run.events[0].key) == 6


def test_funnel_order_within_each_session(small_run: Run) -> None:
    """view before click, click before add_to_cart, and a purchase only of a carted item."""
    session_of: dict[str, str] = {}  # user → current session (a user's sessions never overlap)
    seen: dict[str, set[tuple[str, str]]] = {}  # session → (action, item)
    cart: dict[str, set[str]] = {}
    for _, _, event in small_run.events:
        if isinstance(event, ClickEvent):
            session_of[event.user_id] = event.session_id
            done = seen.setdefault(event.session_id, set())
            items = cart.setdefault(event.session_id, set())
            if event.action is Action.CLICK:
                assert ("view", event.item_id) in done
            elif event.action is Action.ADD_TO_CART:
                assert ("click", event.item_id) in done
                items.add(event.item_id)
            elif event.action is Action.REMOVE_FROM_CART:
                assert event.item_id in items
                items.discard(event.item_id)
            done.add((event.action.value, event.item_id))
        elif isinstance(event, PurchaseEvent):
            assert event.item_id in cart[session_of[event.user_id]]


def test_reviews_follow_purchases_and_match_their_rating(
    small_run: Run, corpus: ReviewCorpus
) -> None:
    bought: dict[tuple[str, str], int] = {}
    positive, negative = set(corpus.positive), set(corpus.negative)
    reviews = 0
    for _, _, event in small_run.events:
        if isinstance(event, PurchaseEvent):
            bought.setdefault((event.user_id, event.item_id), event.ts)
        elif isinstance(event, ReviewEvent):
            reviews += 1
            assert bought[(event.user_id, event.item_id)] < event.ts
            assert event.lang == "zh"
            if event.rating <= 2:
                assert event.text in negative
            elif event.rating >= 4:
                assert event.text in positive
            else:
                assert event.text in positive or event.text in negative
    assert reviews >= 20


def test_deal_campaigns_tag_clicks_and_purchases(small_run: Run) -> None:
    campaigns = {d["campaign"] for d in small_run.truth["deals"]}
    assert len(campaigns) == small_run.config.deals
    tagged = [e.event for e in small_run.events if getattr(e.event, "campaign", None)]
    assert tagged and {e.campaign for e in tagged} <= campaigns  # type: ignore[union-attr]
    assert any(isinstance(e, PurchaseEvent) for e in tagged)
