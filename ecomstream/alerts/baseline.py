"""Slow baselines: decayed review counts per item and per category, and prior shrinkage.

Why decayed counts rather than an EWMA of per-bucket shares: most items get a
handful of reviews per bucket, and a bucket's share from one review is 0 or 1.
Decaying the counts (negatives and reviews) by the same factor per bucket of
event time and taking their ratio weighs every review equally within a
half-life, and the decayed review count says how much evidence the baseline has.

Why shrinkage: a new item has no history. Its baseline is the posterior mean of
a Beta prior centred on its category's share with ``item_pseudo_count`` pseudo
reviews, i.e. ``(neg + k·prior) / (n + k)``; the category's share is in turn
shrunk toward ``global_prior``. With much history the item's own share wins.

>>> shrink(negative=0.0, reviews=0.0, prior=0.2, pseudo=10.0)  # nothing seen: the prior
0.2
>>> shrink(negative=3.0, reviews=30.0, prior=0.2, pseudo=10.0)  # (3 + 2) / (30 + 10)
0.125
>>> rate = DecayedRate()
>>> rate.fold(bucket=0, reviews=10, negative=5, decay=0.5)
>>> rate.fold(bucket=1, reviews=10, negative=0, decay=0.5)  # the first bucket now weighs 0.5
>>> round(rate.negative / rate.reviews, 4), rate.weight_at(3, 0.5)
(0.1667, 3.75)
>>> held = DecayedRate(); held.fold(bucket=2, reviews=4, negative=4, decay=0.5)
>>> rate.merge(held, decay=0.5)  # as if bucket 2 had been folded in its turn
>>> round(rate.negative / rate.reviews, 4), rate.at
(0.4565, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from ecomstream.alerts.config import AlertConfig
from ecomstream.alerts.records import ScoredReview
from ecomstream.alerts.windows import BucketRing, WindowStats, bucket_of, closed_before

# Category bucket columns: the item columns, then the reviews that may feed the baseline
# (those of items that are not in an episode) and how many of them were negative.
CATEGORY_FIELDS: Final = 6
BASE_N, BASE_NEG = 4, 5
CATEGORY_CODEC_VERSION: Final = 1


def shrink(negative: float, reviews: float, prior: float, pseudo: float) -> float:
    """Posterior mean negative share with a Beta(pseudo·prior, pseudo·(1-prior)) prior."""
    return (negative + pseudo * prior) / (reviews + pseudo)


class DecayedRate:
    """Negative and total review counts, each decayed by ``decay`` per bucket of event time.

    ``at`` is the bucket the sums are decayed to; folding a later bucket first decays the
    sums to it. The stored sums are only brought forward on a fold; readers use
    :meth:`weight_at`, so an idle key costs nothing.
    """

    __slots__ = ("at", "negative", "reviews")

    def __init__(self, reviews: float = 0.0, negative: float = 0.0, at: int | None = None) -> None:
        self.reviews = reviews
        self.negative = negative
        self.at = at

    def fold(self, bucket: int, reviews: int, negative: int, decay: float) -> None:
        """Absorb one bucket's counts (buckets must come in increasing order)."""
        if self.at is not None and bucket > self.at:
            factor = decay ** (bucket - self.at)
            self.reviews *= factor
            self.negative *= factor
        if self.at is None or bucket > self.at:
            self.at = bucket
        self.reviews += reviews
        self.negative += negative

    def factor_at(self, bucket: int, decay: float) -> float:
        if self.at is None or bucket <= self.at:
            return 1.0
        return float(decay ** (bucket - self.at))

    def weight_at(self, bucket: int, decay: float) -> float:
        """Effective number of reviews behind the baseline as of ``bucket``."""
        return self.reviews * self.factor_at(bucket, decay)

    def share_at(self, bucket: int, decay: float, prior: float, pseudo: float) -> float:
        factor = self.factor_at(bucket, decay)
        return shrink(self.negative * factor, self.reviews * factor, prior, pseudo)

    def merge(self, other: DecayedRate, decay: float) -> None:
        """Absorb ``other``'s decayed sums (exact: both are brought to the later bucket)."""
        if other.at is None:
            return
        if self.at is not None and self.at > other.at:
            factor = other.factor_at(self.at, decay)
            self.reviews += other.reviews * factor
            self.negative += other.negative * factor
        else:
            self.fold(other.at, 0, 0, decay)
            self.reviews += other.reviews
            self.negative += other.negative

    def encode(self) -> list[Any]:
        return [self.reviews, self.negative, self.at]

    @classmethod
    def decode(cls, data: Sequence[Any]) -> DecayedRate:
        return cls(float(data[0]), float(data[1]), data[2])


class CategoryState:
    """A category's window (all its items) and its baseline, folded when a bucket closes.

    Why folded on close, not when a bucket leaves the window as for items: the category
    prior is what a new item is compared with, so it should be current; one item's
    incident barely moves a whole category, and the reviews of items already in an
    episode are kept out of the category baseline anyway.
    """

    __slots__ = ("category", "clock", "folded", "rate", "ring")

    def __init__(self, category: str, config: AlertConfig) -> None:
        self.category = category
        self.clock = 0
        self.ring = BucketRing(config.window_buckets, CATEGORY_FIELDS)
        self.rate = DecayedRate()
        self.folded: int | None = None  # last bucket folded into the baseline

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [
                CATEGORY_CODEC_VERSION,
                self.category,
                self.clock,
                self.ring.encode(),
                self.rate.encode(),
                self.folded,
            ]
        )

    @classmethod
    def from_bytes(cls, raw: bytes, config: AlertConfig) -> CategoryState:
        version, category, clock, ring, rate, folded = orjson.loads(raw)
        if version != CATEGORY_CODEC_VERSION:
            raise ValueError(f"unknown category state version {version}")
        state = cls(category, config)
        state.clock = clock
        state.ring = BucketRing.decode(config.window_buckets, CATEGORY_FIELDS, ring)
        state.rate = DecayedRate.decode(rate)
        state.folded = folded
        return state


def advance_category(config: AlertConfig, state: CategoryState, now: int) -> None:
    """Move the category's clock to ``now``: fold newly closed buckets, roll the window."""
    ring = state.ring
    if ring.head is not None and now <= state.clock:
        return
    state.clock = max(state.clock, now)
    open_from = closed_before(state.clock, config.grace_ms, config.bucket_ms)
    first = ring.first
    if first is not None:
        # Closed buckets are still in the ring (grace_ms <= window - bucket), so each is
        # folded exactly once, in order; empty ones only cost the decay of the next fold.
        start = first if state.folded is None else max(state.folded + 1, first)
        for bucket in range(start, open_from):
            values = ring.get(bucket)
            if values[BASE_N]:
                state.rate.fold(bucket, values[BASE_N], values[BASE_NEG], config.decay_per_bucket)
    if state.folded is None or open_from - 1 > state.folded:
        state.folded = open_from - 1
    ring.roll(bucket_of(state.clock, config.bucket_ms))


def observe_category(
    config: AlertConfig,
    state: CategoryState,
    review: ScoredReview,
    *,
    now: int | None = None,
    in_baseline: bool = True,
) -> bool:
    """Count ``review`` in its category; False when it came after its bucket closed.

    ``in_baseline=False`` counts it in the window but keeps it out of the baseline (the
    review's item is in an episode).
    """
    clock = max(state.clock, review.ts, now if now is not None else review.ts)
    advance_category(config, state, clock)
    bucket = bucket_of(review.ts, config.bucket_ms)
    if bucket < closed_before(state.clock, config.grace_ms, config.bucket_ms):
        return False
    neg = int(review.negative)
    rating = review.rating
    counted = int(in_baseline)
    state.ring.add(
        bucket,
        (1, neg, rating or 0, int(rating is not None), counted, neg * counted),
    )
    return True


def category_prior(config: AlertConfig, state: CategoryState | None) -> float:
    """The category's negative share, shrunk toward ``global_prior`` (in labels: ``label_prior``);
    the items' prior."""
    if state is None or state.ring.head is None:
        return config.label_prior
    return state.rate.share_at(
        closed_before(state.clock, config.grace_ms, config.bucket_ms) - 1,
        config.decay_per_bucket,
        config.label_prior,
        config.category_pseudo_count,
    )


def category_window(config: AlertConfig, state: CategoryState) -> WindowStats:
    """The category's current window (volume, counts, negative share, mean rating)."""
    return WindowStats.of(state.ring, config.bucket_ms)
