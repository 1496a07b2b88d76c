"""Builders shared by the sentiment-alert tests."""

from __future__ import annotations

import random
from collections.abc import Iterator

from ecomstream.alerts import ScoredReview

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a bucket boundary for 5-minute buckets
MIN = 60_000


def review(
    i: int,
    ts: int,
    *,
    negative: bool,
    item: str = "i1",
    category: str = "home",
    rating: int | None = None,
    text: str | None = None,
    p: float | None = None,
) -> ScoredReview:
    return ScoredReview(
        review_id=f"{item}-r{i}",
        item_id=item,
        category=category,
        ts=ts,
        negative=negative,
        p_negative=p if p is not None else (0.9 if negative else 0.1),
        rating=rating if rating is not None else (1 if negative else 5),
        excerpt=text,
    )


def stream(
    share: float,
    *,
    start: int = T0,
    every_ms: int = MIN,
    count: int = 100,
    item: str = "i1",
    seed: int = 0,
    first: int = 0,
) -> Iterator[ScoredReview]:
    """``count`` reviews ``every_ms`` apart, each negative with probability ``share``."""
    rng = random.Random(f"{seed}:{item}:{start}")
    for k in range(count):
        yield review(first + k, start + k * every_ms, negative=rng.random() < share, item=item)
