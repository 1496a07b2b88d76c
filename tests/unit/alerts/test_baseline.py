from __future__ import annotations

import pytest

from ecomstream.alerts import (
    AlertConfig,
    CategoryState,
    SentimentDetector,
    category_prior,
    category_window,
    observe_category,
)
from ecomstream.alerts.baseline import DecayedRate, shrink

from .helpers import MIN, T0, review, stream

CONFIG = AlertConfig()


def test_decayed_rate_halves_per_half_life() -> None:
    rate = DecayedRate()
    decay = 0.5  # per bucket
    rate.fold(0, 10, 4, decay)
    assert rate.weight_at(0, decay) == 10
    assert rate.weight_at(2, decay) == pytest.approx(2.5)
    rate.fold(2, 10, 0, decay)  # old counts first decay to bucket 2
    assert rate.reviews == pytest.approx(12.5) and rate.negative == pytest.approx(1.0)


def test_shrinkage_moves_from_prior_to_own_share_with_evidence() -> None:
    assert shrink(0, 0, 0.3, 10) == 0.3
    assert shrink(1, 10, 0.3, 10) == pytest.approx(0.2)
    assert shrink(100, 1000, 0.3, 10) == pytest.approx(0.102, abs=1e-3)


def test_new_item_baseline_is_the_category_prior() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    detector.observe(state, review(0, T0, negative=False), prior=0.25)
    assert detector.baseline(state) == pytest.approx(0.25)
    assert detector.baseline_weight(state) == 0


def test_item_baseline_absorbs_buckets_only_after_they_leave_the_window() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    # 30 minutes of reviews, 1 in 5 negative: all still inside the 30-minute window.
    for k in range(30):
        detector.observe(state, review(k, T0 + k * MIN, negative=k % 5 == 0), prior=0.5)
    assert detector.baseline_weight(state) == 0
    assert detector.baseline(state) == pytest.approx(0.5)
    # 30 minutes later the first window has left and feeds the baseline.
    detector.advance(state, T0 + 60 * MIN)
    assert detector.baseline_weight(state) == pytest.approx(30, rel=0.05)
    expected = shrink(6, 30, 0.5, CONFIG.item_pseudo_count)
    assert detector.baseline(state) == pytest.approx(expected, rel=0.02)


def test_baseline_decays_toward_the_prior_when_an_item_goes_quiet() -> None:
    config = AlertConfig(baseline_half_life_ms=60 * MIN)
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    for r in stream(0.0, count=30):
        detector.observe(state, r, prior=0.4)
    detector.advance(state, T0 + 60 * MIN)
    near = detector.baseline(state)
    detector.advance(state, T0 + 24 * 60 * MIN)
    assert near < 0.15 and detector.baseline(state) == pytest.approx(0.4, abs=0.01)


def test_category_prior_starts_global_and_learns_from_closed_buckets() -> None:
    state = CategoryState("home", CONFIG)
    assert category_prior(CONFIG, state) == CONFIG.global_prior
    for k, r in enumerate(stream(0.5, count=60, item="i2")):
        assert observe_category(CONFIG, state, r)
        assert k >= 0
    prior = category_prior(CONFIG, state)
    assert CONFIG.global_prior < prior < 0.5
    window = category_window(CONFIG, state)
    assert window.reviews == 30 and window.end_ms - window.start_ms == CONFIG.window_ms


def test_category_baseline_leaves_out_reviews_of_items_in_an_episode() -> None:
    quiet, noisy = CategoryState("home", CONFIG), CategoryState("home", CONFIG)
    for k, r in enumerate(stream(0.1, count=60, item="i2")):
        bad = review(k, r.ts + 1, negative=True, item="i9")
        for state in (quiet, noisy):
            assert observe_category(CONFIG, state, r)
            assert observe_category(CONFIG, state, bad, in_baseline=state is noisy)
    assert category_prior(CONFIG, quiet) < 0.2 < category_prior(CONFIG, noisy)
    # Both windows count every review.
    assert category_window(CONFIG, quiet).reviews == category_window(CONFIG, noisy).reviews


def test_category_state_codec_roundtrip() -> None:
    state = CategoryState("home", CONFIG)
    for r in stream(0.3, count=50):
        observe_category(CONFIG, state, r)
    back = CategoryState.from_bytes(state.to_bytes(), CONFIG)
    assert back.to_bytes() == state.to_bytes()
    assert category_prior(CONFIG, back) == category_prior(CONFIG, state)


def test_category_drops_reviews_after_their_bucket_closed() -> None:
    state = CategoryState("home", CONFIG)
    observe_category(CONFIG, state, review(0, T0 + 20 * MIN, negative=False))
    assert not observe_category(CONFIG, state, review(1, T0 + 10 * MIN, negative=True))
    assert observe_category(CONFIG, state, review(2, T0 + 17 * MIN, negative=True))
