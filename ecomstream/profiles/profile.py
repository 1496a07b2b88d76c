"""The rolling user profile and its update rules.

One :class:`UserProfile` per user, mutated in place by plain, deterministic
functions (``apply_click``, ``apply_purchase``, ``apply_review``,
``apply_review_score``; ``apply_event`` / ``apply_accepted`` dispatch). A batch
handler loads a profile once, applies all of the user's events of the batch, and
encodes it once (:mod:`ecomstream.profiles.codec`): no copy per event.

What a profile holds (every part bounded; see :class:`ProfileConfig`):

* ``cats`` — category interests, exponentially decayed in event time (forward decay
  against the landmark ``lm``, half-life ``interest_half_life_s``); at most
  ``max_categories`` (the weakest is evicted);
* ``seen`` — the last ``recent_seen`` distinct items seen, oldest first, each with the
  event time and the strongest action (viewed < opened < wish-listed < in cart; a
  removal from the cart lowers "in cart" to "opened");
* ``bought`` — the last ``recent_bought`` distinct items bought, with the time;
* ``win`` — counts per action (clicks by action, purchases, reviews) over rolling
  windows (1 h in 5-minute buckets, 24 h in 1-hour buckets), a sparse ring of at most
  ``buckets + 1`` buckets each;
* RFM (``last_buy``, ``n_orders`` / ``n_lines``, ``spend``), a price band (EWMA of log
  price and its variance), average rating given, average review sentiment (P(positive)
  from review-scores), the debounce state, and the last input offset per topic.

Out-of-order events — the rule: every part is defined as a function of the *set* of
events, evaluated at the profile's clock ``ts`` (the newest event time seen):

* interests are ``Σ w · 2^(−(ts − t)/h)``, so a late event adds exactly what it would
  have added in order, never more (it is older, so it weighs less than a fresh one);
* a late event of a window counter goes to its own bucket unless that bucket is older
  than every bucket kept (so counts do not depend on arrival order); the clock never
  moves backwards;
* recent lists stay sorted by event time; a late item enters at its place (and drops
  out at once if it is older than everything kept in a full list);
* a late click of a session that is no longer the current one does not co-visit;
* the price band (an EWMA) and the order counter (a new ``order_id`` after another)
  fold late purchases in on arrival, which can bias them slightly.

Duplicates: :func:`apply_accepted` skips an input message whose offset is not beyond
the last one applied from the same topic partition. A user's messages come from one
partition per topic (inputs are keyed by user_id), so a batch redelivered after a
crash is not counted twice.

>>> from ecomstream.events import ClickEvent, PurchaseEvent
>>> p = UserProfile("u1")
>>> _ = apply_click(p, ClickEvent(event_id="e1", user_id="u1", session_id="s1",
...     item_id="i1", category="books", action="view", ts=1_767_225_600_000))
>>> _ = apply_purchase(p, PurchaseEvent(event_id="e2", order_id="o1", user_id="u1",
...     item_id="i1", category="books", price=45.0, quantity=2, ts=1_767_225_660_000))
>>> p.recent_items(), p.recent_bought(), p.spend, p.window_counts("1h")["purchase"]
(['i1'], ['i1'], 90.0, 1)
>>> [c for c, _ in p.top_categories()]
['books']
"""

from __future__ import annotations

import math
from itertools import islice
from typing import Any, Final

from ecomstream.events import ClickEvent, Event, PurchaseEvent, ReviewEvent
from ecomstream.ingest import Accepted
from ecomstream.profiles.config import (
    ACTION_INDEX,
    ACTION_NAMES,
    CARTED,
    CLICKED,
    DEFAULT_PROFILE_CONFIG,
    N_ACTIONS,
    ProfileConfig,
    WindowSpec,
)
from ecomstream.profiles.decay import by_score, evict_smallest, needs_rescale, rescale
from ecomstream.profiles.scores import ReviewScore

_PURCHASE: Final = ACTION_INDEX["purchase"]
_REVIEW: Final = ACTION_INDEX["review"]
_REMOVE: Final = "remove_from_cart"

Signature = tuple[tuple[str, ...], tuple[str, ...]]  # (top categories, most recent items)


class UserProfile:
    """Compact, mutable per-user state. Read it through the methods; mutate it with ``apply_*``."""

    __slots__ = (
        "bought",
        "cats",
        "emit_sig",
        "emit_ts",
        "first_buy",
        "last_buy",
        "last_order",
        "lm",
        "n_lines",
        "n_orders",
        "offsets",
        "pending_buy",
        "pending_cart",
        "price_mu",
        "price_n",
        "price_var",
        "rating_n",
        "rating_sum",
        "seen",
        "sent_n",
        "sent_sum",
        "sess",
        "sess_items",
        "sess_ts",
        "spend",
        "ts",
        "user_id",
        "win",
    )

    def __init__(self, user_id: str, config: ProfileConfig = DEFAULT_PROFILE_CONFIG) -> None:
        self.user_id = user_id
        self.ts = 0  # the profile's clock: newest event time applied (epoch ms), 0 = none
        self.lm = 0  # landmark of ``cats`` (forward decay), set by the first interest
        self.cats: dict[str, float] = {}
        self.seen: dict[str, list[int]] = {}  # item -> [ts, strength]; ascending ts
        self.bought: dict[str, int] = {}  # item -> ts; ascending ts
        self.sess = ""
        self.sess_items: list[str] = []
        self.sess_ts = 0  # newest click of any session: sessions follow clicks only
        self.win: list[dict[int, list[int]]] = [{} for _ in config.windows]
        self.n_orders = 0
        self.n_lines = 0
        self.spend = 0.0
        self.first_buy = 0
        self.last_buy = 0
        self.last_order = ""
        self.price_mu = 0.0  # EWMA of ln(price)
        self.price_var = 0.0  # EW variance of ln(price)
        self.price_n = 0
        self.rating_sum = 0
        self.rating_n = 0
        self.sent_sum = 0.0  # Σ P(positive) of the user's scored reviews
        self.sent_n = 0
        self.emit_ts = -1  # event time of the last recommendation update, -1 = none yet
        self.emit_sig: Signature | None = None
        self.pending_buy = False  # a purchase was applied since the last update
        self.pending_cart = False  # an item entered or left the cart since the last update
        self.offsets: dict[str, list[int]] = {}  # topic -> [partition, last offset applied]

    def __repr__(self) -> str:
        return (
            f"UserProfile({self.user_id!r}, ts={self.ts}, cats={len(self.cats)}, "
            f"seen={len(self.seen)}, bought={len(self.bought)}, orders={self.n_orders})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserProfile):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    # -- reading ------------------------------------------------------------------------
    def interests(
        self, now: int | None = None, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
    ) -> dict[str, float]:
        """Decayed interest per category at ``now`` (default: the profile's clock)."""
        at = self.ts if now is None else now
        factor = 2.0 ** ((self.lm - at) / config.interest_half_life_ms)
        return {c: s * factor for c, s in self.cats.items()}

    def top_categories(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` strongest categories with their share of all interest (ties: by name)."""
        total = sum(self.cats.values())
        if total <= 0.0:
            return []
        return [(c, s / total) for c, s in by_score(self.cats)[:k] if s > 0.0]

    def recent_items(self, n: int | None = None) -> list[str]:
        """Most recent first."""
        return list(islice(reversed(self.seen), n))

    def recent_entries(self, n: int | None = None) -> list[tuple[str, int, int]]:
        """``(item_id, ts, strength)``, most recent first."""
        seen = self.seen
        return [(i, seen[i][0], seen[i][1]) for i in islice(reversed(seen), n)]

    def seed_entries(self, n: int, held: int | None = None) -> list[tuple[str, int, int]]:
        """:meth:`recent_entries` ``(n)``, then the older items held at strength ``held`` or
        above (e.g. CARTED: still in the cart), most recent first.

        >>> p = UserProfile("u"); p.seen = {"a": [1, CARTED], "b": [2, 1], "c": [3, 1]}
        >>> p.seed_entries(2), p.seed_entries(2, CARTED)
        ([('c', 3, 1), ('b', 2, 1)], [('c', 3, 1), ('b', 2, 1), ('a', 1, 4)])
        """
        entries = self.recent_entries(n)
        if held is not None and len(entries) < len(self.seen):
            older = islice(reversed(self.seen.items()), len(entries), None)
            entries += [(i, e[0], e[1]) for i, e in older if e[1] >= held]
        return entries

    def recent_bought(self, n: int | None = None) -> list[str]:
        return list(islice(reversed(self.bought), n))

    def bought_since(self, since_ts: int) -> set[str]:
        return {item for item, ts in self.bought.items() if ts >= since_ts}

    def window_counts(
        self,
        window: str | int,
        now: int | None = None,
        config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
    ) -> dict[str, int]:
        """Counts per action over a rolling window (by name, e.g. ``"1h"``, or index)."""
        index = window if isinstance(window, int) else _window_index(config, window)
        spec = config.windows[index]
        at = self.ts if now is None else now
        newest = at // spec.bucket_ms
        oldest = newest - spec.buckets + 1
        rows = [counts for bucket, counts in self.win[index].items() if oldest <= bucket <= newest]
        if not rows:
            return dict.fromkeys(ACTION_NAMES, 0)
        return dict(zip(ACTION_NAMES, map(sum, zip(*rows, strict=True)), strict=True))

    def price_band(self) -> tuple[float, float] | None:
        """One standard deviation around the (geometric) EWMA purchase price."""
        if not self.price_n:
            return None
        sd = math.sqrt(max(self.price_var, 0.0))
        return (round(math.exp(self.price_mu - sd), 2), round(math.exp(self.price_mu + sd), 2))

    def avg_rating(self) -> float | None:
        return self.rating_sum / self.rating_n if self.rating_n else None

    def avg_sentiment(self) -> float | None:
        """Mean P(positive) of the user's scored reviews."""
        return self.sent_sum / self.sent_n if self.sent_n else None

    def summary(self, config: ProfileConfig = DEFAULT_PROFILE_CONFIG) -> dict[str, Any]:
        """What a recommendation update carries about the user (JSON-ready)."""
        avg_rating, avg_sent = self.avg_rating(), self.avg_sentiment()
        windows = {}
        for i, spec in enumerate(config.windows):
            windows[spec.name] = {
                k: v for k, v in self.window_counts(i, config=config).items() if v
            }
        return {
            "top_categories": [[c, round(s, 4)] for c, s in self.top_categories()],
            "recent_items": self.recent_items(5),
            "recent_bought": self.recent_bought(5),
            "rfm": {
                "last_purchase_ts": self.last_buy or None,
                "orders": self.n_orders,
                "spend": round(self.spend, 2),
            },
            "price_band": self.price_band(),
            "avg_rating": None if avg_rating is None else round(avg_rating, 3),
            "avg_sentiment": None if avg_sent is None else round(avg_sent, 3),
            "activity": windows,
        }


def _window_index(config: ProfileConfig, name: str) -> int:
    for i, spec in enumerate(config.windows):
        if spec.name == name:
            return i
    raise KeyError(f"no window named {name!r}")


# -- the parts ----------------------------------------------------------------------------
def _add_interest(
    p: UserProfile, category: str, weight: float, ts: int, config: ProfileConfig
) -> None:
    half_life = config.interest_half_life_ms
    if p.lm == 0:
        p.lm = ts
    elif needs_rescale(ts, p.lm, half_life):
        rescale(p.cats, 2.0 ** ((p.lm - ts) / half_life))
        p.lm = ts
    cats = p.cats
    value = weight * 2.0 ** ((ts - p.lm) / half_life)
    old = cats.get(category)
    if old is not None:
        cats[category] = old + value
    else:
        cats[category] = value
        if len(cats) > config.max_categories:
            evict_smallest(cats, config.max_categories)


_WINDOW_PARAMS: dict[int, tuple[tuple[WindowSpec, ...], tuple[tuple[int, int], ...]]] = {}


def _window_params(windows: tuple[WindowSpec, ...]) -> tuple[tuple[int, int], ...]:
    """``(bucket_ms, buckets kept)`` per window, computed once per windows tuple (hot path)."""
    found = _WINDOW_PARAMS.get(id(windows))
    if found is None or found[0] is not windows:
        found = _WINDOW_PARAMS[id(windows)] = (
            windows,  # held, so the id is not reused while the entry lives
            tuple((spec.bucket_ms, spec.buckets + 1) for spec in windows),
        )
    return found[1]


def _count(p: UserProfile, action: int, ts: int, config: ProfileConfig) -> None:
    """Count into the event's bucket; keep the ``buckets + 1`` newest buckets that have events.

    Why by bucket id and not by the profile's clock: the result is then the same whatever
    order the events arrive in (a backlog replay interleaves topics differently from a live
    run), and reads still restrict counts to the window that ends at the time asked for.
    """
    for (bucket_ms, cap), buckets in zip(_window_params(config.windows), p.win, strict=True):
        bucket = ts // bucket_ms
        counts = buckets.get(bucket)
        if counts is None:
            if len(buckets) >= cap and bucket < min(buckets):
                continue  # older than every bucket kept: it would be evicted at once
            counts = buckets[bucket] = [0] * N_ACTIONS
            if len(buckets) > cap:
                del buckets[min(buckets)]
        counts[action] += 1


def _resort(entries: dict[str, Any], key: Any) -> dict[str, Any]:
    return dict(sorted(entries.items(), key=key))


def _seen_key(kv: tuple[str, list[int]]) -> tuple[int, str]:
    return kv[1][0], kv[0]


def _bought_key(kv: tuple[str, int]) -> tuple[int, str]:
    return kv[1], kv[0]


def _touch_seen(
    p: UserProfile, item: str, ts: int, strength: int, removal: bool, config: ProfileConfig
) -> None:
    seen = p.seen
    entry = seen.get(item)
    if entry is not None:
        if removal:
            strength = CLICKED if ts >= entry[0] and entry[1] == CARTED else entry[1]
        elif entry[1] > strength:
            strength = entry[1]
        if (entry[1] >= CARTED) != (strength >= CARTED):
            p.pending_cart = True  # it entered or left the cart
        if ts < entry[0]:  # late: the item keeps its newer place
            entry[1] = strength
            return
    elif strength >= CARTED:
        p.pending_cart = True
    newest = seen[next(reversed(seen))][0] if seen else ts
    if entry is not None:
        del seen[item]
    seen[item] = [ts, strength]
    if ts < newest:  # late event: put the item at its place in time
        p.seen = seen = _resort(seen, _seen_key)
    while len(seen) > config.recent_seen:
        del seen[next(iter(seen))]


def _touch_bought(p: UserProfile, item: str, ts: int, config: ProfileConfig) -> None:
    bought = p.bought
    old = bought.get(item)
    if old is not None:
        if ts <= old:
            return
        del bought[item]
    newest = bought[next(reversed(bought))] if bought else ts
    bought[item] = ts
    if ts < newest:
        p.bought = bought = _resort(bought, _bought_key)
    while len(bought) > config.recent_bought:
        del bought[next(iter(bought))]


# -- update rules -------------------------------------------------------------------------
def session_peers(
    p: UserProfile, event: ClickEvent, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> tuple[str, ...]:
    """Items of the current session that ``event``'s item is *newly* seen together with.

    Call before :func:`apply_click`. Each unordered pair of distinct items is reported
    once per session (the item's first appearance), paired with at most
    ``session_items`` of the session's latest items, nearest last.

    >>> from ecomstream.events import ClickEvent
    >>> p = UserProfile("u")
    >>> peers = []
    >>> for item in ("a", "b", "a"):
    ...     e = ClickEvent(event_id=item, user_id="u", session_id="s", item_id=item,
    ...                    category="c", action="view", ts=1_767_225_600_000)
    ...     peers.append(session_peers(p, e)); _ = apply_click(p, e)
    >>> peers
    [(), ('a',), ()]
    """
    if event.session_id != p.sess or event.item_id in p.sess_items:
        return ()
    return tuple(p.sess_items)


def apply_click(
    p: UserProfile, event: ClickEvent, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> UserProfile:
    ts, action = event.ts, event.action
    _count(p, ACTION_INDEX[action], ts, config)
    weight = config.interest_weights.get(action, 0.0)
    if weight > 0.0:
        _add_interest(p, event.category, weight, ts, config)
    item = event.item_id
    _touch_seen(p, item, ts, config.strengths.get(action, 1), action == _REMOVE, config)
    if event.session_id == p.sess:
        items = p.sess_items
        if item not in items:
            items.append(item)
            if len(items) > config.session_items:
                del items[0]
    elif ts >= p.sess_ts:  # a new session starts; a late click of an old session is ignored
        p.sess = event.session_id
        p.sess_items = [item]
    if ts > p.sess_ts:
        p.sess_ts = ts
    if ts > p.ts:
        p.ts = ts
    return p


def apply_purchase(
    p: UserProfile, event: PurchaseEvent, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> UserProfile:
    ts = event.ts
    _count(p, _PURCHASE, ts, config)
    _add_interest(p, event.category, config.interest_weights["purchase"], ts, config)
    _touch_bought(p, event.item_id, ts, config)
    p.n_lines += 1
    if event.order_id != p.last_order:
        p.n_orders += 1
        p.last_order = event.order_id
    p.spend += event.price * event.quantity
    if p.first_buy == 0 or ts < p.first_buy:
        p.first_buy = ts
    if ts > p.last_buy:
        p.last_buy = ts
    x = math.log(max(event.price, 0.01))
    if p.price_n == 0:
        p.price_mu, p.price_var = x, 0.0
    else:
        alpha = config.price_alpha
        delta = x - p.price_mu
        p.price_mu += alpha * delta
        p.price_var = (1.0 - alpha) * (p.price_var + alpha * delta * delta)
    p.price_n += 1
    p.pending_buy = True
    if ts > p.ts:
        p.ts = ts
    return p


def apply_review(
    p: UserProfile, event: ReviewEvent, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> UserProfile:
    ts = event.ts
    _count(p, _REVIEW, ts, config)
    p.rating_sum += event.rating
    p.rating_n += 1
    if event.rating >= 4 and config.review_interest > 0.0:
        _add_interest(p, event.category, config.review_interest, ts, config)
    if ts > p.ts:
        p.ts = ts
    return p


def apply_review_score(
    p: UserProfile, score: ReviewScore, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> UserProfile:
    """Fold a scored review of this user into the average sentiment (needs review-scores
    re-keyed by user_id to reach the user's partition)."""
    p.sent_sum += score.p_positive
    p.sent_n += 1
    if score.ts > p.ts:
        p.ts = score.ts
    return p


def apply_event(
    p: UserProfile, event: Event, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> UserProfile:
    kind = type(event)
    if kind is ClickEvent:
        return apply_click(p, event, config)  # type: ignore[arg-type]
    if kind is PurchaseEvent:
        return apply_purchase(p, event, config)  # type: ignore[arg-type]
    if kind is ReviewEvent:
        return apply_review(p, event, config)  # type: ignore[arg-type]
    raise TypeError(f"not an input event: {kind.__name__}")


def is_duplicate(p: UserProfile, topic: str, partition: int, offset: int) -> bool:
    """True when this offset was already applied; otherwise records it (call once per message).

    >>> p = UserProfile("u")
    >>> [is_duplicate(p, "clicks", 3, offset) for offset in (10, 10, 11, 9)]
    [False, True, False, True]
    """
    last = p.offsets.get(topic)
    if last is not None and last[0] == partition:
        if offset <= last[1]:
            return True
        last[1] = offset
    else:  # first message, or the topic was re-partitioned: start over from here
        p.offsets[topic] = [partition, offset]
    return False


def apply_accepted(
    p: UserProfile, accepted: Accepted, config: ProfileConfig = DEFAULT_PROFILE_CONFIG
) -> bool:
    """Apply one ingested message unless it is a redelivered duplicate; True when applied."""
    source = accepted.source
    if is_duplicate(p, source.topic, source.partition, source.offset):
        return False
    apply_event(p, accepted.event, config)
    return True
