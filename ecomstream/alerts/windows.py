"""Event-time windows of scored reviews as a ring of per-bucket counts.

Why a ring of buckets: a hopping window of ``W`` buckets needs only ``W`` rows of
integer counts per key, however many reviews arrive, and rolling it forward is
a few list writes. Out-of-order reviews land in their own bucket as long as that
bucket is still in the ring; the caller decides lateness (see :func:`is_too_late`).

A bucket ``b`` covers event time ``[b·B, (b+1)·B)``. The ring's ``head`` is the
newest bucket; the window is buckets ``head-W+1 .. head``. Rolling the head
forward returns the non-empty buckets that fell out of the window, oldest first,
so a baseline can absorb them exactly once.

>>> ring = BucketRing(width=3, fields=2)
>>> ring.roll(10)
[]
>>> ring.add(10, (1, 1)); ring.add(9, (1, 0)); ring.add(10, (1, 0))
>>> ring.totals()
[3, 1]
>>> ring.roll(12)  # bucket 9 leaves the window 10..12
[(9, (1, 0))]
>>> ring.totals(), ring.first
([2, 1], 10)
>>> ring.roll(20)  # a gap longer than the window empties the ring
[(10, (2, 1))]
>>> BucketRing.decode(3, 2, ring.encode()).totals()
[0, 0]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Columns of an item's bucket: reviews, negative reviews, sum of ratings, reviews with a rating.
N, NEG, RATING_SUM, RATED = 0, 1, 2, 3
ITEM_FIELDS = 4


def bucket_of(ts_ms: int, bucket_ms: int) -> int:
    """Index of the bucket holding event time ``ts_ms``.

    >>> bucket_of(599_999, 300_000), bucket_of(600_000, 300_000)
    (1, 2)
    """
    return ts_ms // bucket_ms


def closed_before(clock_ms: int, grace_ms: int, bucket_ms: int) -> int:
    """First bucket still open: buckets below it ended before the watermark ``clock - grace``.

    >>> closed_before(1_000_000, 120_000, 300_000)  # watermark 880,000: buckets 0, 1 closed
    2
    """
    return (clock_ms - grace_ms) // bucket_ms


def is_too_late(ts_ms: int, clock_ms: int, grace_ms: int, bucket_ms: int) -> bool:
    """Whether a review at ``ts_ms`` arrives after its bucket closed (watermark passed its end).

    >>> is_too_late(599_999, 720_000, 120_000, 300_000)  # bucket 1 ends at 600,000 = watermark
    True
    >>> is_too_late(600_000, 720_000, 120_000, 300_000)
    False
    """
    return bucket_of(ts_ms, bucket_ms) < closed_before(clock_ms, grace_ms, bucket_ms)


class BucketRing:
    """``width`` buckets of ``fields`` integer counts each, indexed by event-time bucket."""

    __slots__ = ("cells", "fields", "head", "width")

    def __init__(self, width: int, fields: int) -> None:
        self.width = width
        self.fields = fields
        self.head: int | None = None
        self.cells = [0] * (width * fields)

    @property
    def first(self) -> int | None:
        """Oldest bucket of the window (None before the first roll)."""
        return None if self.head is None else self.head - self.width + 1

    def covers(self, bucket: int) -> bool:
        head = self.head
        return head is not None and head - self.width < bucket <= head

    def _slot(self, bucket: int) -> int:
        return (bucket % self.width) * self.fields

    def get(self, bucket: int) -> tuple[int, ...]:
        """The counts of ``bucket`` (zeros when it is outside the window)."""
        if not self.covers(bucket):
            return (0,) * self.fields
        slot = self._slot(bucket)
        return tuple(self.cells[slot : slot + self.fields])

    def add(self, bucket: int, values: Sequence[int]) -> None:
        """Add ``values`` to ``bucket``, which must be inside the window."""
        if not self.covers(bucket):
            raise ValueError(f"bucket {bucket} is outside the window ending at {self.head}")
        slot = self._slot(bucket)
        cells = self.cells
        for i, value in enumerate(values):
            cells[slot + i] += value

    def roll(self, head: int) -> list[tuple[int, tuple[int, ...]]]:
        """Make ``head`` the newest bucket; returns the non-empty buckets that left, oldest first.

        A head at or before the current one changes nothing.
        """
        old = self.head
        if old is None:
            self.head = head
            return []
        if head <= old:
            return []
        left: list[tuple[int, tuple[int, ...]]] = []
        cells, fields = self.cells, self.fields
        for bucket in range(old - self.width + 1, min(head - self.width + 1, old + 1)):
            slot = self._slot(bucket)
            values = tuple(cells[slot : slot + fields])
            if any(values):
                left.append((bucket, values))
                cells[slot : slot + fields] = [0] * fields
        self.head = head
        return left

    def buckets(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Non-empty buckets of the window, oldest first."""
        if self.head is None:
            return
        for bucket in range(self.head - self.width + 1, self.head + 1):
            values = self.get(bucket)
            if any(values):
                yield bucket, values

    def totals(self) -> list[int]:
        """Per-column sums over the window."""
        sums = [0] * self.fields
        cells, fields = self.cells, self.fields
        for start in range(0, len(cells), fields):
            for i in range(fields):
                sums[i] += cells[start + i]
        return sums

    # -- compact codec: [head, [[offset from head, *counts], ...]] with only non-empty buckets
    def encode(self) -> list[Any]:
        head = self.head
        if head is None:
            return [None, []]
        return [head, [[bucket - head, *values] for bucket, values in self.buckets()]]

    @classmethod
    def decode(cls, width: int, fields: int, data: Sequence[Any]) -> BucketRing:
        ring = cls(width, fields)
        head, rows = data
        ring.head = head
        for row in rows:
            ring.add(head + row[0], row[1:])
        return ring


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What one window shows: volume, counts by label, negative share, mean rating."""

    start_ms: int
    end_ms: int
    reviews: int
    negative: int
    rating_sum: int = 0
    rated: int = 0

    @property
    def positive(self) -> int:
        return self.reviews - self.negative

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.reviews if self.reviews else None

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.rated if self.rated else None

    @classmethod
    def of(cls, ring: BucketRing, bucket_ms: int) -> WindowStats:
        """The window of an item-shaped ring (columns N, NEG, RATING_SUM, RATED first).

        >>> ring = BucketRing(2, ITEM_FIELDS); _ = ring.roll(4); ring.add(4, (2, 1, 7, 2))
        >>> stats = WindowStats.of(ring, 1000)
        >>> stats.start_ms, stats.end_ms, stats.negative_share, stats.mean_rating
        (3000, 5000, 0.5, 3.5)
        """
        head = ring.head if ring.head is not None else 0
        sums = ring.totals()
        return cls(
            start_ms=(head - ring.width + 1) * bucket_ms,
            end_ms=(head + 1) * bucket_ms,
            reviews=sums[N],
            negative=sums[NEG],
            rating_sum=sums[RATING_SUM],
            rated=sums[RATED],
        )

    def to_dict(self) -> dict[str, Any]:
        share, mean = self.negative_share, self.mean_rating
        return {
            "start": self.start_ms,
            "end": self.end_ms,
            "reviews": self.reviews,
            "negative": self.negative,
            "positive": self.positive,
            "negative_share": None if share is None else round(share, 4),
            "mean_rating": None if mean is None else round(mean, 3),
        }
