"""Top-K recommendations for one user, with reasons, as a ``RecommendationUpdate``.

Candidates and their behavioural relevance (all non-negative, summed per item):

* **co-visitation** — for each seed ``r``, the user's ``seeds`` most recent items plus
  every older item still in the cart (``held_seeds``; weight ``w_r`` = strength / 4 ×
  2^(−age / recent_half_life)): ``w_covis · w_r · P(i | r)``, with ``P(i | r)`` the
  decayed share of ``r``'s co-visits that were with ``i``;
* **category popularity** — for each of the user's top ``categories`` ``c`` (share
  ``s_c`` of the user's interest): ``w_popular · s_c · pop(i) / pop(top item of c)``;
* **recently seen, not bought** — ``w_recent · w_i`` for the seeds themselves
  ("still in your cart", "you viewed this recently"): the user's own intent. Without
  ``held_seeds``, an item carted early in a long session fell out of the latest
  ``seeds`` and lost its reminder: those were 30 of the 31 purchases the lists just
  before an order missed on the simulator (seed 42);
* **shop-wide popularity** as a fallback when the above give fewer than K items.

Then: items the user bought in the last ``exclude_bought_s`` are removed; the score is
multiplied by the item's sentiment multiplier (below) when ``use_sentiment``;
the list is diversified greedily — each pick from a category multiplies the
remaining scores of that category by ``diversity`` (optionally a hard
``max_per_category``); ties break on item_id, so the output is deterministic.

Sentiment multiplier: with ``q0`` the shop-wide share of positive review mass and
``(neg, pos)`` the item's decayed review mass, ``q = (pos + a·q0) / (neg + pos + a)``
(``a`` pseudo-reviews of prior) and ``m = clamp((q / q0)^γ, floor, ceiling)``; an open
sentiment incident multiplies ``m`` by ``incident_multiplier``. An item with no
reviews gets ``m = 1``; bad recent reviews or an incident make it sink.

Two limits on that rule, both measured on the simulator (tuning seeds 1–4, held-out
seeds 101–106; see ``evaluate.py``'s report):

* **Demotion only** (``sentiment_ceiling = 1``). A boost above 1 grows with the
  *number* of positive reviews, i.e. with past sales: it re-counts the popularity the
  behavioural score already holds and lifted popular items over the user's own
  intent (next-purchase NDCG@10 fell). Reviews are used for what behaviour cannot
  see — that an item has turned bad.
* **The user's own choice is warned about, not hidden** (``sentiment_spares``): an
  item the user holds at that strength or above (by default: in the cart) keeps
  ``m = 1`` and carries a ``"warning: …"`` reason instead of sinking. The user has
  already chosen it, and reads its reviews before paying; sinking a cart reminder
  only loses the orders that still happen (every purchase the old rule lost on the
  simulator was of an incident item in the buyer's cart, ranked first without
  sentiment). Sentiment re-ranks what we *suggest*.

>>> from ecomstream.profiles.profile import UserProfile
>>> from ecomstream.recommend.items import ItemDelta, ItemIndex
>>> index = ItemIndex()
>>> for item, pop in (("i1", 5.0), ("i2", 3.0), ("i3", 1.0)):
...     _ = index.apply_delta(ItemDelta(item, "books", lm=1_000, pop=pop))
>>> p = UserProfile("u1"); p.cats, p.lm, p.ts = {"books": 1.0}, 1_000, 1_000
>>> p.bought = {"i1": 900}
>>> update = recommend(p, index, "e9", 1_000, RecommenderConfig(k=2))
>>> [(r.item_id, r.reasons[0]) for r in update.items]
[('i2', 'popular in your category books'), ('i3', 'popular in your category books')]
>>> update.update_id == update_id("u1", "e9")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import orjson

from ecomstream.config import dataclass_from_env
from ecomstream.profiles.config import (
    CARTED,
    CLICKED,
    DEFAULT_PROFILE_CONFIG,
    SEEN,
    WISHED,
    ProfileConfig,
)
from ecomstream.profiles.profile import UserProfile
from ecomstream.recommend.items import (
    ALL,
    DEFAULT_ITEM_CONFIG,
    ItemConfig,
    ItemIndex,
    ItemRecord,
    ItemView,
)

COVIS, POPULAR, RECENT, SHOP = 0, 1, 2, 3
RECENT_REASONS: Final = {
    CARTED: "still in your cart",
    WISHED: "on your wish list",
    CLICKED: "you looked at this recently",
    SEEN: "you viewed this recently",
}


@dataclass(frozen=True, slots=True)
class RecommenderConfig:
    k: int = 10
    seeds: int = 10  # recent items whose co-visitation neighbours are candidates
    # Older items the user holds at this strength or above are seeds too (CARTED: the
    # whole cart, however many items were viewed since); None: only the ``seeds`` latest.
    held_seeds: int | None = CARTED
    neighbours_per_seed: int = 10  # the most co-visited items of each seed
    recent_half_life_s: float = 3600.0
    categories: int = 3  # top categories whose popular items are candidates
    per_category: int = 20
    w_covis: float = 1.0
    w_popular: float = 0.3
    w_recent: float = 0.5
    w_shop: float = 0.05  # fallback: shop-wide popular items
    exclude_bought_s: float = 7 * 86400.0  # 0: never exclude what was bought
    diversity: float = 0.8  # 1.0: no diversification
    max_per_category: int | None = None
    use_sentiment: bool = True
    sentiment_pseudo_reviews: float = 5.0
    sentiment_exponent: float = 1.0
    sentiment_floor: float = 0.2
    sentiment_ceiling: float = 1.0  # demotion only (module docstring); > 1 boosts praise
    incident_multiplier: float = 0.1
    # Items the user holds at this strength or above (profile ``seen``; CARTED: in the
    # cart) are warned about, never demoted; None: sentiment demotes them like any other.
    sentiment_spares: int | None = CARTED
    demote_below: float = 0.85  # multipliers below this are explained as a demotion
    praise_above: float = 1.1

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if not 0.0 < self.diversity <= 1.0:
            raise ValueError("diversity must be in (0, 1]")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecommenderConfig:
        """Defaults overridden by ``ECOMSTREAM_RECOMMEND_<FIELD>`` variables.

        >>> RecommenderConfig.from_env({"ECOMSTREAM_RECOMMEND_K": "5",
        ...                             "ECOMSTREAM_RECOMMEND_SENTIMENT_SPARES": "none"})
        ... # doctest: +ELLIPSIS
        RecommenderConfig(k=5, ..., sentiment_spares=None, ...)
        """
        return dataclass_from_env(cls, "ECOMSTREAM_RECOMMEND_", environ)


DEFAULT_RECOMMENDER_CONFIG: Final = RecommenderConfig()


@dataclass(frozen=True, slots=True)
class RankedItem:
    item_id: str
    category: str
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "category": self.category,
            "score": self.score,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class RecommendationUpdate:
    """The value written to ``recommendation-updates`` (key: user_id)."""

    update_id: str
    user_id: str
    trigger_event_id: str
    ts: int  # event time of the trigger
    items: tuple[RankedItem, ...]
    profile: dict[str, Any]

    def item_ids(self) -> list[str]:
        return [r.item_id for r in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {
            "update_id": self.update_id,
            "user_id": self.user_id,
            "trigger_event_id": self.trigger_event_id,
            "ts": self.ts,
            "items": [r.to_dict() for r in self.items],
            "profile": self.profile,
        }

    def to_json(self) -> bytes:
        # orjson writes a (slots) dataclass as an object of its fields in declaration
        # order, tuples as arrays: the bytes of ``to_dict()``, without building the dicts.
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> RecommendationUpdate:
        d = orjson.loads(raw)
        return cls(
            update_id=d["update_id"],
            user_id=d["user_id"],
            trigger_event_id=d["trigger_event_id"],
            ts=d["ts"],
            items=tuple(
                RankedItem(r["item_id"], r["category"], r["score"], tuple(r["reasons"]))
                for r in d["items"]
            ),
            profile=d["profile"],
        )


def update_id(user_id: str, event_id: str) -> str:
    """Deterministic id of the update a trigger event causes (a redelivery repeats it).

    >>> update_id("u1", "e42")
    'ca110a00a67b781fcde7e359'
    """
    digest = hashlib.blake2b(f"{user_id}\x1f{event_id}".encode(), digest_size=12)
    return digest.hexdigest()


def sentiment_multiplier(
    record: ItemRecord,
    now: int,
    prior: float,
    config: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
    item_config: ItemConfig = DEFAULT_ITEM_CONFIG,
    *,
    spared: bool = False,
) -> tuple[float, str | None]:
    """``(multiplier, reason or None)`` for one item (module docstring).

    ``spared``: the item is the user's own choice (see ``sentiment_spares``): a
    multiplier below 1 is lifted to 1 and the reason becomes a warning.

    >>> from ecomstream.recommend.items import ItemRecord
    >>> r = ItemRecord("i1"); r.slm, r.neg, r.pos = 1_000, 8.0, 2.0
    >>> m, why = sentiment_multiplier(r, 1_000, prior=0.8)
    >>> round(m, 3), why
    (0.5, 'demoted: negative reviews (80% negative recently)')
    >>> sentiment_multiplier(r, 1_000, prior=0.8, spared=True)
    (1.0, 'warning: negative reviews (80% negative recently)')
    """
    m = 1.0
    reason = None
    neg, pos = record.sentiment_counts(now, item_config)
    mass = neg + pos
    if mass > 0.0 and prior > 0.0:
        a = config.sentiment_pseudo_reviews
        q = (pos + a * prior) / (mass + a)
        m = (q / prior) ** config.sentiment_exponent
        m = min(max(m, config.sentiment_floor), config.sentiment_ceiling)
        if m < config.demote_below:
            reason = f"demoted: negative reviews ({neg / mass:.0%} negative recently)"
        elif m > config.praise_above:
            reason = f"well reviewed ({pos / mass:.0%} positive recently)"
    if record.incident:
        m *= config.incident_multiplier
        reason = "demoted: open quality incident"
    if spared and m < 1.0:
        m = 1.0
        if reason is not None:
            reason = "warning: " + reason.removeprefix("demoted: ")
    return m, reason


def is_spared(profile: UserProfile, item_id: str, spares: int | None) -> bool:
    """Whether ``item_id`` is the user's own choice that sentiment must not sink.

    True when the profile holds the item at strength ``spares`` or above (CARTED: in the
    cart; a removal from the cart lowers it, so an item put back is demoted again).

    >>> p = UserProfile("u1"); p.seen = {"i1": [5, CARTED], "i2": [6, SEEN]}
    >>> is_spared(p, "i1", CARTED), is_spared(p, "i2", CARTED), is_spared(p, "i1", None)
    (True, False, False)
    """
    if spares is None:
        return False
    entry = profile.seen.get(item_id)
    return entry is not None and entry[1] >= spares


def excluded_items(
    profile: UserProfile, now: int, config: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG
) -> set[str]:
    """What no list may show at ``now``: the items bought in the last ``exclude_bought_s``."""
    if config.exclude_bought_s <= 0:
        return set()
    return profile.bought_since(now - round(config.exclude_bought_s * 1000))


@lru_cache(maxsize=1 << 16)  # few distinct (kind, item or category) pairs; formatting is not
def _reason(kind: int, arg: Any) -> str:
    if kind == COVIS:
        return f"viewed together with {arg}"
    if kind == POPULAR:
        return f"popular in your category {arg}"
    if kind == RECENT:
        return RECENT_REASONS.get(arg, "you viewed this recently")
    return "popular in the shop"


def _note_order(note: tuple[float, int, Any]) -> tuple[float, int]:
    return -note[0], note[1]


Scored = tuple[float, str, str, str | None]  # (-score, item_id, category, sentiment note)


def _by_category(entry: Scored) -> tuple[str, float, str]:
    return entry[2], entry[0], entry[1]


def _diversify(scored: list[Scored], config: RecommenderConfig) -> list[Scored]:
    """Greedy diversification: each pick from a category multiplies that category's
    remaining scores by ``diversity``.

    Entries carry the *negated* score. The greedy choice (highest damped score, ties
    by item id) takes a category's items best first, its n-th one damped by
    ``diversity ** n``; since damping only lowers later items, that is exactly the
    best ``k`` of all items after damping each by its rank in its own category (only
    a category's first ``min(k, max_per_category)`` can be picked). Returns the picks
    with their damped score, positive.

    >>> picks = _diversify([(-1.0, "a", "x", None), (-0.9, "b", "x", None),
    ...                     (-0.8, "c", "y", None)], RecommenderConfig(k=3, diversity=0.5))
    >>> [(item, score) for score, item, _, _ in picks]
    [('a', 1.0), ('c', 0.8), ('b', 0.45)]
    """
    k = config.k
    cap = k if config.max_per_category is None else config.max_per_category
    damping = [config.diversity**n for n in range(max(min(k, cap), 0))]
    depth = len(damping)
    scored.sort(key=_by_category)
    damped: list[Scored] = []
    category, n = None, 0
    for neg, item, cat, note in scored:
        if cat != category:
            category, n = cat, 0
        if n < depth:
            damped.append((neg * damping[n], item, cat, note))
        n += 1
    damped.sort()
    return [(-neg, item, cat, note) for neg, item, cat, note in damped[:k]]


def rank(
    profile: UserProfile,
    items: ItemView,
    now: int,
    config: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
    item_config: ItemConfig = DEFAULT_ITEM_CONFIG,
) -> tuple[RankedItem, ...]:
    """The ranked list (module docstring) for ``profile`` at event time ``now``."""
    ranks_itself = getattr(items, "rank", None)  # the native replica: the same lists, faster
    if ranks_itself is not None:
        return ranks_itself(profile, now, config, item_config)
    cand: dict[str, float] = {}
    get = cand.get
    # The index's own dict when it is one: a method call per look-up is a large share of
    # the ranking's cost (tens of look-ups per list).
    lookup = items.records.get if isinstance(items, ItemIndex) else items.get
    # What each source contributed, to explain the final items only.
    recent: dict[str, tuple[float, int, int]] = {}  # item -> (value, RECENT, strength)
    covisited: list[tuple[str, float, dict[str, float]]] = []  # (seed, scale, its neighbours)
    categories: list[tuple[str, dict[str, float]]] = []  # strongest first

    half_life = config.recent_half_life_s * 1000.0
    w_recent, w_covis = config.w_recent, config.w_covis
    per_seed = config.neighbours_per_seed
    for item, seen_ts, strength in profile.seed_entries(config.seeds, config.held_seeds):
        weight = strength / CARTED * 2.0 ** (-max(now - seen_ts, 0) / half_life)
        if w_recent:
            cand[item] = get(item, 0.0) + w_recent * weight
            recent[item] = (w_recent * weight, RECENT, strength)
        record = lookup(item)
        if record is None or record.nb_total <= 0.0 or not w_covis:
            continue
        scale = w_covis * weight / record.nb_total
        covisited.append((item, scale, record.nb))
        for other, count in record.top_neighbours(per_seed):
            cand[other] = get(other, 0.0) + count * scale
    if config.w_popular:
        for category, share in profile.top_categories(config.categories):
            top = items.top(category, config.per_category)
            if not top or top[0][1] <= 0.0:
                continue
            scale = config.w_popular * share / top[0][1]
            contributions = {other: pop * scale for other, pop in top}
            categories.append((category, contributions))
            for other, value in contributions.items():
                cand[other] = get(other, 0.0) + value
    excluded = excluded_items(profile, now, config)
    shop: dict[str, float] = {}
    if config.w_shop and len(cand) - len(excluded.intersection(cand)) < config.k:
        top = items.top(ALL, config.k + len(excluded))
        if top and top[0][1] > 0.0:
            scale = config.w_shop / top[0][1]
            for other, pop in top:
                cand[other] = get(other, 0.0) + pop * scale
                shop[other] = pop * scale

    use_sentiment = config.use_sentiment
    prior = items.sentiment_prior(now) if use_sentiment else 0.0
    spares = config.sentiment_spares
    scored: list[Scored] = []
    for item, score in cand.items():
        if item in excluded or score <= 0.0:
            continue
        record = lookup(item)
        if record is None:
            scored.append((-score, item, "", None))
            continue
        note = None
        if use_sentiment and (record.slm or record.incident):
            m, note = sentiment_multiplier(
                record, now, prior, config, item_config, spared=is_spared(profile, item, spares)
            )
            score *= m
        scored.append((-score, item, record.category, note))

    ranked = []
    for score, item, category, note in _diversify(scored, config):
        notes: list[tuple[float, int, Any]] = []
        if item in recent:
            notes.append(recent[item])
        best, best_seed = 0.0, ""
        for seed, scale, neighbours in covisited:
            together = neighbours.get(item)
            if together is not None and together * scale > best:
                best, best_seed = together * scale, seed
        if best > 0.0:
            notes.append((best, COVIS, best_seed))
        for category_name, contributions in categories:
            if item in contributions:
                notes.append((contributions[item], POPULAR, category_name))
                break  # categories come strongest first
        if item in shop:
            notes.append((shop[item], SHOP, None))
        if len(notes) > 1:
            notes.sort(key=_note_order)
        reasons = [_reason(kind, arg) for _, kind, arg in notes[:2]]
        if note is not None:
            reasons.append(note)
        ranked.append(RankedItem(item, category, round(score, 6), tuple(reasons)))
    return tuple(ranked)


def recommend(
    profile: UserProfile,
    items: ItemView,
    trigger_event_id: str,
    ts: int,
    config: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
    item_config: ItemConfig = DEFAULT_ITEM_CONFIG,
    profile_config: ProfileConfig = DEFAULT_PROFILE_CONFIG,
) -> RecommendationUpdate:
    """The update for ``profile`` caused by event ``trigger_event_id`` at event time ``ts``."""
    return RecommendationUpdate(
        update_id=update_id(profile.user_id, trigger_event_id),
        user_id=profile.user_id,
        trigger_event_id=trigger_event_id,
        ts=ts,
        items=rank(profile, items, ts, config, item_config),
        profile=profile.summary(profile_config),
    )


def recommend_popular(
    profile: UserProfile,
    items: ItemView,
    now: int,
    config: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
) -> list[str]:
    """Baseline: the shop's most popular items, minus what the user just bought."""
    excluded = excluded_items(profile, now, config)
    top = items.top(ALL, config.k + len(excluded))
    return [item for item, _ in top if item not in excluded][: config.k]
