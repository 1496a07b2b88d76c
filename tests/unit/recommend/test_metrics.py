from __future__ import annotations

import pytest

from ecomstream.recommend.metrics import (
    bootstrap_mean_ci,
    compare_paired,
    hit_rate_at,
    ndcg_at,
    sign_test_p,
)


def test_hit_rate_and_ndcg() -> None:
    lists = [("a", "b", "c"), ("x", "y"), ("q",)]
    targets = ["b", "x", "z"]
    assert hit_rate_at(lists, targets, 10) == pytest.approx(0.6667)
    assert hit_rate_at(lists, targets, 1) == pytest.approx(0.3333)
    assert ndcg_at(lists, targets, 10) == pytest.approx((1 / 1.585 + 1.0) / 3, abs=1e-3)
    assert ndcg_at(lists, targets, 1) == pytest.approx(1 / 3, abs=1e-4)
    assert hit_rate_at([], [], 10) == ndcg_at([], [], 10) == 0.0


def test_sign_test_matches_the_binomial_tails() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(3, 3) == 1.0
    assert sign_test_p(10, 0) == pytest.approx(2 / 1024)
    assert sign_test_p(0, 10) == sign_test_p(10, 0)  # two-sided
    assert sign_test_p(9, 1) == pytest.approx(2 * 11 / 1024)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = [0.0] * 80 + [0.5] * 20
    low, high = bootstrap_mean_ci(values)
    assert (low, high) == bootstrap_mean_ci(values)
    assert low < 0.1 < high
    assert bootstrap_mean_ci(values, level=0.5) != (low, high)
    assert bootstrap_mean_ci([]) == (0.0, 0.0)


def test_a_ranker_that_lifts_the_bought_item_beats_one_that_ties_on_hits() -> None:
    """Same hits, the candidate puts the bought item first where the reference has it second."""
    reference = [("x", "a")] * 20 + [("a", "x")] * 80
    candidate = [("a", "x")] * 100
    pairing = compare_paired(candidate, reference, ["a"] * 100, k=10)
    assert (pairing.higher, pairing.lower, pairing.hits_gained, pairing.hits_lost) == (20, 0, 0, 0)
    assert pairing.ndcg_diff > 0 and pairing.ndcg_diff_low > 0
    assert pairing.sign_p < 1e-5
    assert pairing.beats
    assert "ranked higher in 20 of 100 lines, lower in 0" in pairing.summary(10)


def test_losing_a_hit_is_not_beating_even_with_a_better_mean() -> None:
    reference = [("x", "a")] * 50 + [("a",)]
    candidate = [("a", "x")] * 50 + [("z",)]
    pairing = compare_paired(candidate, reference, ["a"] * 51, k=10)
    assert pairing.ndcg_diff_low > 0
    assert pairing.hits_lost == 1
    assert not pairing.beats


def test_a_difference_within_noise_does_not_beat() -> None:
    reference = [("x", "a")] * 5 + [("a", "x")] * 95
    candidate = [("a", "x")] * 5 + [("x", "a")] * 4 + [("a", "x")] * 91
    pairing = compare_paired(candidate, reference, ["a"] * 100, k=10)
    assert (pairing.higher, pairing.lower) == (5, 4)
    assert pairing.ndcg_diff_low < 0 < pairing.ndcg_diff_high
    assert not pairing.beats
