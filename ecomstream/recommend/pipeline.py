"""One ingest batch → updated profiles, item deltas and recommendation triggers.

This is the function the Faust ingest handler calls; it needs no broker. Per batch:

1. each user's profile is loaded once (``load``: table bytes, a cached
   :class:`UserProfile`, or None), every event of the user is applied in place, and
   redelivered messages are skipped by offset;
2. item deltas are accumulated per item (popularity, and co-visitation of items
   newly seen together in a session), forward-decayed against the batch's newest
   event time: one message per touched item per batch, keyed by item_id;
3. the debounce (:mod:`ecomstream.profiles.change`) is evaluated once per touched
   user; a user that passes gets a :class:`Trigger` (the purchase if the batch has
   one, else the user's newest event) and is marked updated.

The caller then writes ``outcome.encoded_profiles()`` to the profile table, sends
``outcome.item_deltas`` to the item owner, and calls
:func:`ecomstream.recommend.recommender.recommend` for each trigger. A
:class:`ProfileCache` in front of the table saves decoding each touched profile
every batch (the dominant cost when a batch touches mostly distinct users).

>>> from ecomstream.deadletters import SourcePosition
>>> from ecomstream.events import ClickEvent
>>> from ecomstream.ingest import Accepted
>>> def click(i, item):
...     e = ClickEvent(event_id=f"e{i}", user_id="u1", session_id="s1", item_id=item,
...                    category="books", action="view", ts=1_767_225_600_000 + i)
...     return Accepted(SourcePosition("clicks", 0, i), b"u1", e)
>>> out = process_batch([click(0, "i1"), click(1, "i2"), click(1, "i2")], lambda uid: None)
>>> out.duplicates, sorted(out.item_deltas), out.item_deltas["i1"].nb
(1, ['i1', 'i2'], {'i2': 1.0})
>>> [(t.user_id, t.event_id) for t in out.triggers]
[('u1', 'e1')]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ecomstream.events import ClickEvent, Event, PurchaseEvent
from ecomstream.ingest import Accepted
from ecomstream.profiles.change import decide, mark_updated
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.profiles.config import DEFAULT_PROFILE_CONFIG, ProfileConfig
from ecomstream.profiles.profile import (
    UserProfile,
    apply_click,
    apply_purchase,
    apply_review,
    apply_review_score,
    is_duplicate,
    session_peers,
)
from ecomstream.profiles.scores import ReviewScore
from ecomstream.recommend.items import DEFAULT_ITEM_CONFIG, ItemConfig, ItemDelta

ProfileSource = Callable[[str], bytes | UserProfile | None]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    profile: ProfileConfig = DEFAULT_PROFILE_CONFIG
    items: ItemConfig = DEFAULT_ITEM_CONFIG
    debounce: bool = True  # False: every touched user is triggered (replay / tests)


DEFAULT_PIPELINE_CONFIG: Final = PipelineConfig()


@dataclass(frozen=True, slots=True)
class Trigger:
    """A user whose recommendation should be recomputed, and the event that caused it."""

    user_id: str
    event_id: str
    ts: int
    purchase: bool


@dataclass(slots=True)
class BatchOutcome:
    profiles: dict[str, UserProfile] = field(default_factory=dict)  # every touched user
    item_deltas: dict[str, ItemDelta] = field(default_factory=dict)
    triggers: list[Trigger] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0

    def encoded_profiles(self, config: ProfileConfig = DEFAULT_PROFILE_CONFIG) -> dict[str, bytes]:
        """Each touched profile encoded once, for the table write."""
        return {uid: encode_profile(p, config) for uid, p in self.profiles.items()}


class ProfileCache:
    """Decoded profiles of the partitions this worker owns (LRU, at most ``maxsize``).

    Why: with many users per batch, decoding every touched profile from the table costs
    more than updating it. Load through ``loader(table.get)``, ``store`` the batch's
    profiles after writing their bytes to the table, and ``clear()`` on every rebalance
    (another worker may have changed a profile while it owned the partition).

    >>> cache = ProfileCache(maxsize=2)
    >>> cache.store({"a": UserProfile("a"), "b": UserProfile("b"), "c": UserProfile("c")})
    >>> len(cache), cache.loader(lambda uid: None)("a") is None
    (2, True)
    """

    def __init__(self, maxsize: int = 100_000) -> None:
        self.maxsize = maxsize
        self._profiles: OrderedDict[str, UserProfile] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._profiles)

    def loader(
        self, fallback: Callable[[str], bytes | UserProfile | None]
    ) -> Callable[[str], bytes | UserProfile | None]:
        def load(user_id: str) -> bytes | UserProfile | None:
            found = self._profiles.get(user_id)
            if found is not None:
                self.hits += 1
                return found
            self.misses += 1
            return fallback(user_id)

        return load

    def store(self, profiles: Mapping[str, UserProfile]) -> None:
        cached = self._profiles
        for user_id, profile in profiles.items():
            cached[user_id] = profile
            cached.move_to_end(user_id)
        while len(cached) > self.maxsize:
            cached.popitem(last=False)

    def clear(self) -> None:
        self._profiles.clear()


def _load(source: ProfileSource, user_id: str, config: ProfileConfig) -> UserProfile:
    found = source(user_id)
    if found is None:
        return UserProfile(user_id, config)
    if isinstance(found, UserProfile):
        return found
    return decode_profile(found, config)


def process_batch(
    batch: Sequence[Accepted],
    load: ProfileSource,
    config: PipelineConfig = DEFAULT_PIPELINE_CONFIG,
) -> BatchOutcome:
    """Apply a batch (in its order) to the users' profiles; see the module docstring."""
    return process_events(
        ((a.event, a.source.topic, a.source.partition, a.source.offset) for a in batch),
        load,
        config,
        max(a.event.ts for a in batch) if batch else 0,
    )


def process_events(
    events: Iterable[tuple[Event, str, int, int]],
    load: ProfileSource,
    config: PipelineConfig,
    landmark: int,
) -> BatchOutcome:
    """:func:`process_batch` over ``(event, topic, partition, offset)``; ``offset < 0``
    skips the duplicate check (replays of files). ``landmark``: the batch's newest ts."""
    pcfg, icfg = config.profile, config.items
    h = icfg.half_life_ms
    pop_weights = icfg.pop_weights
    purchase_weight = pop_weights["purchase"]
    pair_decay = icfg.covisit_decay
    out = BatchOutcome()
    profiles = out.profiles
    deltas = out.item_deltas
    newest: dict[str, Event] = {}
    bought: dict[str, Event] = {}

    def delta_of(item: str, category: str) -> ItemDelta:
        d = deltas.get(item)
        if d is None:
            d = deltas[item] = ItemDelta(item, category, lm=landmark)
        elif category and not d.category:
            d.category = category
        return d

    for event, topic, partition, offset in events:
        uid = event.user_id
        p = profiles.get(uid)
        if p is None:
            p = profiles[uid] = _load(load, uid, pcfg)
        if offset >= 0 and is_duplicate(p, topic, partition, offset):
            out.duplicates += 1
            continue
        out.applied += 1
        kind = type(event)
        ts = event.ts
        if kind is ClickEvent:
            click: ClickEvent = event  # type: ignore[assignment]
            peers = session_peers(p, click, pcfg)
            apply_click(p, click, pcfg)
            item = click.item_id
            fw = 2.0 ** ((ts - landmark) / h)
            w = pop_weights.get(click.action, 0.0)
            d = delta_of(item, click.category)
            if w:
                d.pop += w * fw
            if peers:
                nb = d.nb
                pair = fw
                for peer in reversed(peers):  # nearest first
                    nb[peer] = nb.get(peer, 0.0) + pair
                    d.nb_total += pair
                    pd = delta_of(peer, "")
                    pd.nb[item] = pd.nb.get(item, 0.0) + pair
                    pd.nb_total += pair
                    pair *= pair_decay
        elif kind is PurchaseEvent:
            purchase: PurchaseEvent = event  # type: ignore[assignment]
            apply_purchase(p, purchase, pcfg)
            d = delta_of(purchase.item_id, purchase.category)
            d.pop += purchase_weight * 2.0 ** ((ts - landmark) / h)
            d.price = purchase.price
            bought[uid] = event
        else:
            apply_review(p, event, pcfg)  # type: ignore[arg-type]
        last = newest.get(uid)
        if last is None or ts >= last.ts:
            newest[uid] = event

    for uid, last in newest.items():
        p = profiles[uid]
        trigger = bought.get(uid, last)
        purchased = uid in bought
        if config.debounce:
            current = decide(p, trigger.ts, purchased, pcfg)
            if current is None:
                continue
            mark_updated(p, trigger.ts, pcfg, current)
        else:
            mark_updated(p, trigger.ts, pcfg)
        out.triggers.append(Trigger(uid, trigger.event_id, trigger.ts, purchased))
    return out


def process_review_scores(
    scores: Iterable[tuple[ReviewScore, str, int, int]],
    load: ProfileSource,
    config: PipelineConfig = DEFAULT_PIPELINE_CONFIG,
) -> BatchOutcome:
    """Fold ``(score, topic, partition, offset)`` — review-scores re-keyed by user_id — into
    the users' average review sentiment; no item deltas, no triggers (a score changes
    no list). ``offset < 0`` skips the duplicate check.

    >>> s = ReviewScore("r1", "u1", "i1", "books", 0.2, 0.8, 1_767_225_600_000)
    >>> out = process_review_scores([(s, "review-scores-by-user", 0, 5)] * 2, lambda u: None)
    >>> out.applied, out.duplicates, out.profiles["u1"].avg_sentiment()
    (1, 1, 0.8)
    """
    out = BatchOutcome()
    for score, topic, partition, offset in scores:
        p = out.profiles.get(score.user_id)
        if p is None:
            p = out.profiles[score.user_id] = _load(load, score.user_id, config.profile)
        if offset >= 0 and is_duplicate(p, topic, partition, offset):
            out.duplicates += 1
            continue
        apply_review_score(p, score, config.profile)
        out.applied += 1
    return out
