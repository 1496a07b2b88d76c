from __future__ import annotations

import pytest

from ecomstream.alerts.windows import (
    ITEM_FIELDS,
    BucketRing,
    WindowStats,
    bucket_of,
    closed_before,
    is_too_late,
)

B = 300_000


def test_bucket_boundaries_are_half_open() -> None:
    assert bucket_of(0, B) == 0
    assert bucket_of(B - 1, B) == 0
    assert bucket_of(B, B) == 1


def test_roll_returns_buckets_that_left_oldest_first_and_clears_them() -> None:
    ring = BucketRing(width=3, fields=2)
    ring.roll(5)
    for bucket in (3, 4, 5):
        ring.add(bucket, (bucket, 1))
    assert ring.totals() == [12, 3]
    assert ring.roll(7) == [(3, (3, 1)), (4, (4, 1))]
    assert ring.totals() == [5, 1]
    assert ring.get(4) == (0, 0)  # left the window: reads as empty
    ring.add(7, (1, 0))
    assert list(ring.buckets()) == [(5, (5, 1)), (7, (1, 0))]


def test_roll_backwards_or_in_place_changes_nothing() -> None:
    ring = BucketRing(width=3, fields=1)
    ring.roll(10)
    ring.add(10, (2,))
    assert ring.roll(9) == [] and ring.roll(10) == []
    assert ring.head == 10 and ring.totals() == [2]


def test_gap_longer_than_window_empties_the_ring() -> None:
    ring = BucketRing(width=4, fields=1)
    ring.roll(0)
    ring.add(0, (1,))
    assert ring.roll(100) == [(0, (1,))]
    assert ring.totals() == [0] and ring.first == 97


def test_adding_outside_the_window_is_refused() -> None:
    ring = BucketRing(width=2, fields=1)
    ring.roll(10)
    with pytest.raises(ValueError):
        ring.add(8, (1,))
    with pytest.raises(ValueError):
        ring.add(11, (1,))


def test_ring_codec_keeps_only_non_empty_buckets() -> None:
    ring = BucketRing(width=6, fields=ITEM_FIELDS)
    ring.roll(100)
    ring.add(97, (2, 1, 6, 2))
    ring.add(100, (1, 0, 5, 1))
    data = ring.encode()
    assert data == [100, [[-3, 2, 1, 6, 2], [0, 1, 0, 5, 1]]]
    back = BucketRing.decode(6, ITEM_FIELDS, data)
    assert back.encode() == data and back.totals() == ring.totals()


def test_window_stats() -> None:
    ring = BucketRing(width=2, fields=ITEM_FIELDS)
    ring.roll(3)
    ring.add(2, (3, 2, 6, 3))
    ring.add(3, (1, 0, 5, 1))
    stats = WindowStats.of(ring, B)
    assert (stats.start_ms, stats.end_ms) == (2 * B, 4 * B)
    assert (stats.reviews, stats.negative, stats.positive) == (4, 2, 2)
    assert stats.negative_share == 0.5 and stats.mean_rating == pytest.approx(11 / 4)
    assert stats.to_dict()["mean_rating"] == 2.75


def test_lateness_is_decided_by_the_watermark_and_the_bucket_end() -> None:
    grace = 120_000
    clock = 10 * B + 60_000  # watermark = 10·B - 60 s: bucket 9 still open
    assert closed_before(clock, grace, B) == 9
    assert not is_too_late(9 * B, clock, grace, B)
    assert is_too_late(9 * B - 1, clock, grace, B)
