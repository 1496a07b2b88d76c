"""Item-side state: co-visitation, popularity per category, sentiment and incident flag.

One :class:`ItemRecord` per item, updated by one owner (see the package docstring for
the partitioning) from three inputs:

* :class:`ItemDelta` — what one batch of user events did to an item: popularity
  (weighted views / clicks / carts / purchases) and co-visitation with other items
  seen in the same session, both already forward-decayed against the delta's
  landmark, so the owner folds a whole batch in with one multiply per entry;
* review-scores (``apply_review_score``) — decayed soft counts of negative/positive
  reviews (half-life ``sentiment_half_life_s``: *recent* reviews matter);
* sentiment alerts (``apply_alert``) — an open incident flag set/cleared by the
  alerts capability, newest alert wins.

Bounds: a record keeps the top ``max_neighbours`` co-visited items by decayed count;
when ``1.5 ×`` that many are held, the weakest are evicted in one sort (a new
neighbour always enters, so a rising pair is not locked out). ``nb_total`` keeps the
decayed total of every co-visit ever added, so ``P(j | i) = nb[j] / nb_total`` stays a
true share after evictions. :class:`CategoryTop` keeps the ``category_top`` most
popular items of each category (and of the whole shop, under ``ALL``).

All decayed values are stored against a landmark (:mod:`ecomstream.profiles.decay`);
the recommender mostly reads ratios of values stored against the same landmark,
which need no clock at all.

>>> index = ItemIndex()
>>> d = ItemDelta("i1", "books", lm=1_000, pop=3.0, nb={"i2": 1.0}, nb_total=1.0)
>>> index.apply_delta(d).pop, index.get("i1").cooccurrence("i2")
(3.0, 1.0)
>>> index.top("books", 5), index.top(ALL, 5)
([('i1', 3.0)], [('i1', 3.0)])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from ecomstream.profiles.decay import (
    by_score,
    decayed,
    evict_smallest,
    needs_rescale,
    rescale,
)
from ecomstream.profiles.scores import ReviewScore

ALL: Final = "*"  # CategoryTop key of the shop-wide popularity list
VERSION: Final = 1


def _pop_weights() -> dict[str, float]:
    return {
        "view": 1.0,
        "click": 1.0,
        "add_to_cart": 3.0,
        "remove_from_cart": 0.0,
        "search": 0.5,
        "wishlist": 2.0,
        "purchase": 5.0,
    }


@dataclass(frozen=True, slots=True)
class ItemConfig:
    half_life_s: float = 24 * 3600.0  # popularity and co-visitation
    sentiment_half_life_s: float = 6 * 3600.0
    max_neighbours: int = 50
    category_top: int = 50
    pop_weights: dict[str, float] = field(default_factory=_pop_weights)
    covisit_decay: float = 0.5  # weight of a pair at distance d in a session: decay^(d-1)

    def __post_init__(self) -> None:
        if self.half_life_s <= 0 or self.sentiment_half_life_s <= 0:
            raise ValueError("half-lives must be positive")
        if self.max_neighbours < 1 or self.category_top < 1:
            raise ValueError("bounds must be at least 1")

    @property
    def half_life_ms(self) -> int:
        return round(self.half_life_s * 1000)

    @property
    def sentiment_half_life_ms(self) -> int:
        return round(self.sentiment_half_life_s * 1000)


DEFAULT_ITEM_CONFIG: Final = ItemConfig()


class ItemDelta:
    """One batch's effect on one item, forward-decayed against ``lm`` (the batch's newest ts)."""

    __slots__ = ("category", "item_id", "lm", "nb", "nb_total", "pop", "price")

    def __init__(
        self,
        item_id: str,
        category: str = "",
        *,
        lm: int,
        pop: float = 0.0,
        nb: dict[str, float] | None = None,
        nb_total: float = 0.0,
        price: float | None = None,
    ) -> None:
        self.item_id = item_id
        self.category = category
        self.lm = lm
        self.pop = pop
        self.nb: dict[str, float] = nb if nb is not None else {}
        self.nb_total = nb_total
        self.price = price

    def __repr__(self) -> str:
        return (
            f"ItemDelta({self.item_id!r}, {self.category!r}, lm={self.lm}, pop={self.pop}, "
            f"nb={self.nb}, nb_total={self.nb_total}, price={self.price})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ItemDelta):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


def encode_delta(d: ItemDelta) -> bytes:
    """Compact JSON for the item-signals topic.

    >>> d = ItemDelta("i1", "books", lm=5, pop=1.0, nb={"i2": 0.5}, nb_total=0.5)
    >>> encode_delta(d)
    b'{"i":"i1","l":5,"c":"books","p":1.0,"n":{"i2":0.5},"t":0.5}'
    >>> decode_delta(encode_delta(d)) == d
    True
    """
    out: dict[str, Any] = {"i": d.item_id, "l": d.lm}
    if d.category:
        out["c"] = d.category
    if d.pop:
        out["p"] = d.pop
    if d.nb:
        out["n"] = d.nb
        out["t"] = d.nb_total
    if d.price is not None:
        out["$"] = d.price
    return orjson.dumps(out)


def decode_delta(raw: bytes) -> ItemDelta:
    d = orjson.loads(raw)
    return ItemDelta(
        d["i"],
        d.get("c", ""),
        lm=d["l"],
        pop=float(d.get("p", 0.0)),
        nb=d.get("n"),
        nb_total=float(d.get("t", 0.0)),
        price=d.get("$"),
    )


class ItemRecord:
    """The state of one item. Mutate through :class:`ItemIndex` (or the ``apply_*`` functions)."""

    __slots__ = (
        "_nb_sorted",
        "alert_ts",
        "category",
        "incident",
        "item_id",
        "lm",
        "nb",
        "nb_total",
        "neg",
        "pop",
        "pos",
        "price",
        "reviews",
        "slm",
    )

    def __init__(self, item_id: str, category: str = "") -> None:
        self.item_id = item_id
        self.category = category
        self.lm = 0  # landmark of pop / nb / nb_total
        self.pop = 0.0
        self.nb: dict[str, float] = {}
        self.nb_total = 0.0
        self.price: float | None = None
        self.slm = 0  # landmark of neg / pos
        self.neg = 0.0
        self.pos = 0.0
        self.reviews = 0  # scored reviews ever applied (undecayed)
        self.incident = False
        self.alert_ts = 0
        self._nb_sorted: list[tuple[str, float]] | None = None  # cache, reset by apply_delta

    def __repr__(self) -> str:
        return (
            f"ItemRecord({self.item_id!r}, {self.category!r}, pop={self.pop:.3g}, "
            f"neighbours={len(self.nb)}, neg={self.neg:.3g}, pos={self.pos:.3g}, "
            f"incident={self.incident})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ItemRecord):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in _RECORD_FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def top_neighbours(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` most co-visited items with their stored counts (ties: item id)."""
        ranked = self._nb_sorted
        if ranked is None:
            ranked = self._nb_sorted = by_score(self.nb)
        return ranked[:n]

    def cooccurrence(self, other: str) -> float:
        """Share of this item's decayed co-visits that were with ``other`` (``P(other | self)``)."""
        if self.nb_total <= 0.0:
            return 0.0
        return self.nb.get(other, 0.0) / self.nb_total

    def sentiment_counts(
        self, now: int, config: ItemConfig = DEFAULT_ITEM_CONFIG
    ) -> tuple[float, float]:
        """Decayed (negative, positive) review mass at ``now``."""
        if self.slm == 0:
            return 0.0, 0.0
        h = config.sentiment_half_life_ms
        at = max(now, self.slm)  # never extrapolate backwards: a review ahead of "now" counts 1
        return decayed(self.neg, self.slm, at, h), decayed(self.pos, self.slm, at, h)


_RECORD_FIELDS: Final = tuple(s for s in ItemRecord.__slots__ if not s.startswith("_"))


def apply_delta(
    record: ItemRecord, delta: ItemDelta, config: ItemConfig = DEFAULT_ITEM_CONFIG
) -> ItemRecord:
    h = config.half_life_ms
    record._nb_sorted = None
    if record.lm == 0:
        record.lm = delta.lm
    elif needs_rescale(delta.lm, record.lm, h):
        factor = 2.0 ** ((record.lm - delta.lm) / h)
        record.pop *= factor
        record.nb_total *= factor
        rescale(record.nb, factor)
        record.lm = delta.lm
    f = 2.0 ** ((delta.lm - record.lm) / h)
    if delta.pop:
        record.pop += delta.pop * f
    if delta.nb:
        nb = record.nb
        for other, w in delta.nb.items():
            nb[other] = nb.get(other, 0.0) + w * f
        record.nb_total += delta.nb_total * f
        cap = config.max_neighbours
        if len(nb) >= cap + cap // 2:
            evict_smallest(nb, cap)
    if delta.category:
        record.category = delta.category
    if delta.price is not None:
        record.price = delta.price
    return record


def apply_review_score(
    record: ItemRecord, score: ReviewScore, config: ItemConfig = DEFAULT_ITEM_CONFIG
) -> ItemRecord:
    h = config.sentiment_half_life_ms
    ts = score.ts
    if record.slm == 0:
        record.slm = ts
    elif needs_rescale(ts, record.slm, h):
        factor = 2.0 ** ((record.slm - ts) / h)
        record.neg *= factor
        record.pos *= factor
        record.slm = ts
    f = 2.0 ** ((ts - record.slm) / h)
    record.neg += score.p_negative * f
    record.pos += score.p_positive * f
    record.reviews += 1
    if not record.category and score.category:
        record.category = score.category
    return record


def apply_alert(record: ItemRecord, firing: bool, ts: int) -> ItemRecord:
    """Open (``firing``) or close the incident flag; an alert older than the last one is ignored."""
    if ts >= record.alert_ts:
        record.incident = firing
        record.alert_ts = ts
    return record


def alert_state(value: Mapping[str, Any]) -> tuple[str, bool, int] | None:
    """``(item_id, firing, ts)`` from a sentiment-alerts value, or None if unreadable.

    >>> alert_state({"item_id": "i7", "state": "firing", "ts": 5})
    ('i7', True, 5)
    """
    try:
        ts = value.get("ts", value.get("window_end", 0))
        return str(value["item_id"]), value["state"] == "firing", int(ts)
    except (KeyError, TypeError, ValueError):
        return None


def encode_item(r: ItemRecord) -> bytes:
    out: dict[str, Any] = {"v": VERSION, "i": r.item_id, "c": r.category, "l": r.lm, "p": r.pop}
    if r.nb:
        out["n"] = r.nb
        out["t"] = r.nb_total
    if r.price is not None:
        out["$"] = r.price
    if r.reviews:
        out["s"] = [r.slm, r.neg, r.pos, r.reviews]
    if r.alert_ts:
        out["x"] = [int(r.incident), r.alert_ts]
    return orjson.dumps(out)


def decode_item(raw: bytes) -> ItemRecord:
    d = orjson.loads(raw)
    if d.get("v") != VERSION:
        raise ValueError(f"unknown item record version {d.get('v')!r}")
    r = ItemRecord(d["i"], d["c"])
    r.lm = d["l"]
    r.pop = float(d["p"])
    if "n" in d:
        r.nb = d["n"]
        r.nb_total = float(d["t"])
    r.price = d.get("$")
    if "s" in d:
        r.slm, r.neg, r.pos, r.reviews = d["s"]
        r.neg, r.pos = float(r.neg), float(r.pos)
    if "x" in d:
        incident, r.alert_ts = d["x"]
        r.incident = bool(incident)
    return r


class CategoryTop:
    """The ``size`` most popular items of one category (stored values, own landmark)."""

    __slots__ = ("_ranked", "floor", "lm", "scores", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.lm = 0
        self.scores: dict[str, float] = {}
        self.floor = 0.0  # a newcomer must beat this once the list has been trimmed
        self._ranked: list[tuple[str, float]] | None = None  # cache of ``top``, reset by offer

    def offer(self, item_id: str, stored: float, landmark: int, half_life_ms: int) -> None:
        """Offer an item's *current* popularity (values only grow, so a replace is exact)."""
        if self.lm == 0:
            self.lm = landmark
        elif needs_rescale(landmark, self.lm, half_life_ms):
            factor = 2.0 ** ((self.lm - landmark) / half_life_ms)
            rescale(self.scores, factor)
            self.floor *= factor
            self.lm = landmark
            self._ranked = None
        value = stored * 2.0 ** ((landmark - self.lm) / half_life_ms)
        scores = self.scores
        if item_id in scores or len(scores) < self.size or value > self.floor:
            scores[item_id] = value
            self._ranked = None
            if len(scores) >= 2 * self.size:
                evict_smallest(scores, self.size)
                self.floor = min(scores.values())

    def top(self, n: int) -> list[tuple[str, float]]:
        """Best first (ties: item id); values are comparable within this list only."""
        ranked = self._ranked
        if ranked is None:
            ranked = self._ranked = by_score(self.scores)
        return ranked[:n]


class ItemView(Protocol):
    """What the recommender reads: a replicated, read-only view of item state."""

    def get(self, item_id: str) -> ItemRecord | None: ...

    def top(self, category: str, n: int) -> list[tuple[str, float]]: ...

    def sentiment_prior(self, now: int) -> float: ...


class ItemIndex:
    """Item records plus the derived per-category popularity lists and shop-wide sentiment.

    Two ways in, one result: the owner path (``apply_delta``, ``apply_review_score``,
    ``apply_alert``) mutates records; the reader path (``put``) installs a record read
    from the owner's changelog. Both refresh the derived lists, so a replica built
    from the changelog answers exactly like the owner.
    """

    def __init__(self, config: ItemConfig = DEFAULT_ITEM_CONFIG) -> None:
        self.config = config
        self.records: dict[str, ItemRecord] = {}
        self.tops: dict[str, CategoryTop] = {}
        # Shop-wide decayed review mass (the sentiment prior): stored against ``_slm``.
        self._slm = 0
        self._neg = 0.0
        self._pos = 0.0
        self._contrib: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def get(self, item_id: str) -> ItemRecord | None:
        return self.records.get(item_id)

    def _record(self, item_id: str) -> ItemRecord:
        record = self.records.get(item_id)
        if record is None:
            record = self.records[item_id] = ItemRecord(item_id)
        return record

    def _offer(self, record: ItemRecord) -> None:
        h = self.config.half_life_ms
        size = self.config.category_top
        if record.category:
            top = self.tops.get(record.category)
            if top is None:
                top = self.tops[record.category] = CategoryTop(size)
            top.offer(record.item_id, record.pop, record.lm, h)
        top = self.tops.get(ALL)
        if top is None:
            top = self.tops[ALL] = CategoryTop(size)
        top.offer(record.item_id, record.pop, record.lm, h)

    def _refresh_sentiment(self, record: ItemRecord) -> None:
        if record.slm == 0:
            return
        h = self.config.sentiment_half_life_ms
        if self._slm == 0:
            self._slm = record.slm
        elif needs_rescale(record.slm, self._slm, h):
            factor = 2.0 ** ((self._slm - record.slm) / h)
            self._neg *= factor
            self._pos *= factor
            self._contrib = {k: (n * factor, p * factor) for k, (n, p) in self._contrib.items()}
            self._slm = record.slm
        f = 2.0 ** ((record.slm - self._slm) / h)
        neg, pos = record.neg * f, record.pos * f
        old_neg, old_pos = self._contrib.get(record.item_id, (0.0, 0.0))
        self._neg += neg - old_neg
        self._pos += pos - old_pos
        self._contrib[record.item_id] = (neg, pos)

    # -- owner path --------------------------------------------------------------------
    def apply_delta(self, delta: ItemDelta) -> ItemRecord:
        record = apply_delta(self._record(delta.item_id), delta, self.config)
        if delta.pop:
            self._offer(record)
        return record

    def apply_review_score(self, score: ReviewScore) -> ItemRecord:
        record = apply_review_score(self._record(score.item_id), score, self.config)
        self._refresh_sentiment(record)
        return record

    def apply_alert(self, item_id: str, firing: bool, ts: int) -> ItemRecord:
        return apply_alert(self._record(item_id), firing, ts)

    # -- reader path -------------------------------------------------------------------
    def put(self, record: ItemRecord) -> None:
        """Install a record from the owner's changelog (replaces any previous one)."""
        self.records[record.item_id] = record
        if record.pop:
            self._offer(record)
        self._refresh_sentiment(record)

    def put_encoded(self, raw: bytes) -> None:
        """:meth:`put` a value of the ``items`` table's changelog."""
        self.put(decode_item(raw))

    # -- reads -------------------------------------------------------------------------
    def top(self, category: str, n: int) -> list[tuple[str, float]]:
        top = self.tops.get(category)
        return top.top(n) if top is not None else []

    def sentiment_prior(self, now: int) -> float:
        """Shop-wide share of positive review mass (recent reviews weigh more); 0.5 if none."""
        total = self._neg + self._pos
        if total <= 0.0:
            return 0.5
        return self._pos / total
