from __future__ import annotations

from ecomstream.profiles.change import mark_updated, meaningful_change, should_update, signature
from ecomstream.profiles.config import ProfileConfig
from ecomstream.profiles.profile import UserProfile, apply_click, apply_purchase
from tests.unit.profiles.events import T0, click, purchase

CFG = ProfileConfig(debounce_s=30, min_new_items=2, signature_items=5, signature_categories=2)
CFG_NO_CART = ProfileConfig(
    debounce_s=30, min_new_items=2, signature_items=5, signature_categories=2, cart_triggers=False
)
SECOND = 1000


def test_meaningful_change_rules() -> None:
    base = (("books", "toys"), ("a", "b", "c"))
    assert meaningful_change(None, base, CFG)
    assert not meaningful_change(None, ((), ()), CFG)
    assert not meaningful_change(base, base, CFG)
    assert not meaningful_change(base, (("books", "toys"), ("x", "a", "b")), CFG)  # one new
    assert meaningful_change(base, (("books", "toys"), ("x", "y", "a")), CFG)  # two new
    assert meaningful_change(base, (("toys", "books"), ("a", "b", "c")), CFG)  # new leader
    assert meaningful_change(base, (("books", "home"), ("a", "b", "c")), CFG)  # new category
    assert meaningful_change(((), ("a",)), ((), ("b",)), CFG)  # a short list: one is enough


def test_signature_is_top_categories_and_latest_items() -> None:
    p = UserProfile("u")
    for i, (item, cat) in enumerate([("a", "books"), ("b", "toys"), ("c", "toys")]):
        apply_click(p, click(item=item, category=cat, ts=T0 + i), CFG)
    assert signature(p, CFG) == (("toys", "books"), ("c", "b", "a"))


def test_a_burst_of_clicks_yields_one_update() -> None:
    p = UserProfile("u")
    updates = []
    for i in range(20):  # 20 new items, one per second
        e = click(item=f"i{i}", ts=T0 + i * SECOND)
        apply_click(p, e, CFG)
        if should_update(p, e.ts, purchased=False, config=CFG):
            mark_updated(p, e.ts, CFG)
            updates.append(i)
    assert updates == [0]


def test_after_the_interval_only_a_meaningful_change_updates() -> None:
    p = UserProfile("u")
    apply_click(p, click(item="a", ts=T0), CFG)
    mark_updated(p, T0, CFG)
    apply_click(p, click(item="a", action="click", ts=T0 + 60 * SECOND), CFG)
    assert not should_update(p, T0 + 60 * SECOND, purchased=False, config=CFG)
    apply_click(p, click(item="b", ts=T0 + 61 * SECOND), CFG)
    apply_click(p, click(item="c", ts=T0 + 62 * SECOND), CFG)
    assert should_update(p, T0 + 62 * SECOND, purchased=False, config=CFG)


def test_a_purchase_always_updates_and_is_remembered_until_an_update() -> None:
    p = UserProfile("u")
    apply_click(p, click(item="a", ts=T0), CFG)
    mark_updated(p, T0, CFG)
    apply_purchase(p, purchase(item="a", ts=T0 + SECOND), CFG)
    assert should_update(p, T0 + SECOND, purchased=True, config=CFG)
    assert should_update(p, T0 + SECOND, purchased=False, config=CFG)  # pending purchase
    mark_updated(p, T0 + SECOND, CFG)
    assert not p.pending_buy
    assert not should_update(p, T0 + 2 * SECOND, purchased=False, config=CFG)


def test_a_cart_change_updates_at_once_and_a_view_of_a_cart_item_does_not() -> None:
    p = UserProfile("u")
    apply_click(p, click(item="a", ts=T0), CFG)
    mark_updated(p, T0, CFG)
    apply_click(p, click(item="a", action="add_to_cart", ts=T0 + SECOND), CFG)
    assert should_update(p, T0 + SECOND, purchased=False, config=CFG)  # inside the debounce
    assert not should_update(p, T0 + SECOND, purchased=False, config=CFG_NO_CART)
    mark_updated(p, T0 + SECOND, CFG)
    assert not p.pending_cart
    apply_click(p, click(item="a", ts=T0 + 2 * SECOND), CFG)  # still in the cart
    assert not should_update(p, T0 + 2 * SECOND, purchased=False, config=CFG)
    apply_click(p, click(item="a", action="remove_from_cart", ts=T0 + 3 * SECOND), CFG)
    assert should_update(p, T0 + 3 * SECOND, purchased=False, config=CFG)


def test_a_late_trigger_does_not_move_the_debounce_clock_back() -> None:
    p = UserProfile("u")
    mark_updated(p, T0 + 60 * SECOND, CFG)
    mark_updated(p, T0, CFG)
    assert p.emit_ts == T0 + 60 * SECOND
