from __future__ import annotations

import itertools
import math

from ecomstream.profiles.decay import (
    RESCALE_HALF_LIVES,
    decayed,
    evict_smallest,
    forward_weight,
    needs_rescale,
    rescale,
)

H = 3_600_000


def test_a_score_halves_every_half_life() -> None:
    stored = forward_weight(0, 0, H)
    assert decayed(stored, 0, H, H) == 0.5
    assert decayed(stored, 0, 3 * H, H) == 0.125


def test_the_sum_does_not_depend_on_arrival_order() -> None:
    events = [(0, 1.0), (H, 2.0), (H // 2, 4.0), (5 * H, 1.0)]
    results = set()
    for order in itertools.permutations(events):
        stored = sum(w * forward_weight(t, 0, H) for t, w in order)
        results.add(round(decayed(stored, 0, 5 * H, H), 12))
    assert len(results) == 1


def test_a_late_event_adds_less_than_a_fresh_one() -> None:
    fresh = decayed(forward_weight(2 * H, 0, H), 0, 2 * H, H)
    late = decayed(forward_weight(H, 0, H), 0, 2 * H, H)
    assert late < fresh == 1.0


def test_rescale_keeps_values_and_drops_the_dust() -> None:
    scores = {"a": forward_weight(50 * H, 0, H), "b": 1.0}
    assert needs_rescale(50 * H, 0, H) and RESCALE_HALF_LIVES < 50
    before = decayed(scores["a"], 0, 50 * H, H)
    rescale(scores, 2.0 ** (-50), floor=1e-9)
    assert set(scores) == {"a"}  # b decayed to 2^-50 ≈ 9e-16
    assert math.isclose(decayed(scores["a"], 50 * H, 50 * H, H), before)


def test_evict_smallest_keeps_the_largest_and_breaks_ties_by_key() -> None:
    scores = {"d": 1.0, "a": 3.0, "c": 1.0, "b": 2.0}
    evict_smallest(scores, 3)
    assert scores == {"a": 3.0, "b": 2.0, "c": 1.0}
    evict_smallest(scores, 5)
    assert len(scores) == 3
