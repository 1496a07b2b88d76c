"""When does a user deserve a new recommendation? "Meaningful change" and the debounce.

The rule (all in event time, per user):

1. a purchase always triggers an update (what was just bought must leave the list),
   and so does a change of the cart when ``cart_triggers`` (an item added or removed:
   the strongest intent there is; the list should show it, and what goes with it, now);
2. otherwise at most one update per ``debounce_s`` seconds: an event less than
   ``debounce_s`` after the last update's trigger never triggers;
3. otherwise only a *meaningful change* triggers: the user's top categories changed
   (as a set, or the first one), or at least ``min_new_items`` of the most recent
   ``signature_items`` items seen were not among them at the last update.

A batch handler decides once per user per batch, after applying all of the user's
events, with the user's newest event (or the purchase) as trigger: a burst of
clicks inside one batch — or inside ``debounce_s`` — yields one update. The
burst's final state shows in the next update (the next event after the debounce
interval, or the next purchase); we do not set timers, so the stream stays a pure
function of its input.

>>> from ecomstream.profiles.profile import UserProfile
>>> p = UserProfile("u")
>>> p.cats, p.seen = {"books": 3.0}, {"i1": [1_000, 1]}
>>> should_update(p, 1_000, purchased=False)      # first signature: a change
True
>>> mark_updated(p, 1_000)
>>> p.seen["i2"] = [2_000, 1]; p.seen["i3"] = [3_000, 1]
>>> should_update(p, 3_000, purchased=False)      # two new items, but inside 30 s
False
>>> should_update(p, 3_000, purchased=True), should_update(p, 40_000, purchased=False)
(True, True)
"""

from __future__ import annotations

from itertools import islice

from ecomstream.profiles.config import DEFAULT_PROFILE_CONFIG, ProfileConfig
from ecomstream.profiles.decay import by_score
from ecomstream.profiles.profile import Signature, UserProfile


def signature(p: UserProfile, config: ProfileConfig = DEFAULT_PROFILE_CONFIG) -> Signature:
    """(top categories, most recent items): what a recommendation mostly depends on."""
    k = config.signature_categories
    cats = tuple(c for c, _ in by_score(p.cats)[:k])
    items = tuple(islice(reversed(p.seen), config.signature_items))
    return cats, items


def meaningful_change(
    before: Signature | None, after: Signature, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> bool:
    """Did the top categories or the recent items change enough for a new list?

    >>> meaningful_change((("a", "b"), ("i1", "i2")), (("a", "b"), ("i3", "i1")))
    False
    >>> meaningful_change((("a", "b"), ("i1", "i2")), (("b", "a"), ("i1", "i2")))
    True
    >>> meaningful_change((("a", "b"), ("i1", "i2")), (("a", "b"), ("i3", "i4")))
    True
    """
    if before is None:
        return bool(after[0] or after[1])
    cats_before, items_before = before
    cats_after, items_after = after
    if cats_after[:1] != cats_before[:1] or set(cats_after) != set(cats_before):
        return True
    new = sum(1 for item in items_after if item not in items_before)
    return new >= min(config.min_new_items, max(len(items_after), 1))


def should_update(
    p: UserProfile,
    trigger_ts: int,
    purchased: bool,
    config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
) -> bool:
    """The debounce rule (module docstring); ``purchased``: a purchase is in this batch."""
    return decide(p, trigger_ts, purchased, config) is not None


def decide(
    p: UserProfile,
    trigger_ts: int,
    purchased: bool,
    config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
) -> Signature | None:
    """:func:`should_update`, returning the current signature when the answer is yes
    (hand it to :func:`mark_updated` to save computing it twice)."""
    urgent = purchased or p.pending_buy or (p.pending_cart and config.cart_triggers)
    if not urgent and (p.emit_ts >= 0 and trigger_ts - p.emit_ts < config.debounce_ms):
        return None
    current = signature(p, config)
    if urgent or meaningful_change(p.emit_sig, current, config):
        return current
    return None


def mark_updated(
    p: UserProfile,
    trigger_ts: int,
    config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    current: Signature | None = None,
) -> None:
    """Record that an update was emitted for ``trigger_ts`` (call when it is sent)."""
    if trigger_ts > p.emit_ts:
        p.emit_ts = trigger_ts
    p.emit_sig = current if current is not None else signature(p, config)
    p.pending_buy = False
    p.pending_cart = False
