from __future__ import annotations

import math
import random

import orjson
import pytest

from ecomstream.alerts import (
    AlertConfig,
    ItemState,
    ScoredReview,
    SentimentDetector,
    SentimentMonitor,
    encode_alert,
)
from ecomstream.alerts.detector import binomial_sf, score_bin, wilson_interval, window_llr

from .helpers import MIN, T0, review, stream

CONFIG = AlertConfig()


def settled(detector: SentimentDetector, *, share: float = 0.1, minutes: int = 120) -> ItemState:
    """An item with ``minutes`` of one review a minute at ``share`` negative, and a prior of 0.1."""
    state = detector.new_state("i1", "home")
    for r in stream(share, count=minutes, seed=7):
        assert detector.observe(state, r, prior=0.1).alerts == []
    return state


def burst(
    detector: SentimentDetector, state: ItemState, start: int, count: int, *, negative: bool = True
) -> list[tuple[int, list[str]]]:
    """``count`` reviews a minute apart; returns (index, [state:severity:reason]) per alert."""
    out = []
    for k in range(count):
        r = review(10_000 + start // MIN + k, start + k * MIN, negative=negative)
        alerts = detector.observe(state, r).alerts
        if alerts:
            out.append((k, [f"{a.state}:{a.severity}:{a.reason}" for a in alerts]))
    return out


def test_wilson_and_binomial_helpers() -> None:
    lo, hi = wilson_interval(0, 10, 1.96)
    assert lo == 0.0 and 0.27 < hi < 0.28
    assert wilson_interval(0, 0, 3.0) == (0.0, 1.0)
    assert binomial_sf(3, 3, 0.5) == pytest.approx(0.125)
    assert binomial_sf(1, 4, 0.25) == pytest.approx(1 - 0.75**4)


def test_no_alert_below_the_minimum_volume() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    alerts = [
        detector.observe(state, review(k, T0 + k * MIN, negative=True), prior=0.1).alerts
        for k in range(CONFIG.min_reviews)
    ]
    # min_reviews - 1 all-negative reviews are not enough; the next one is.
    assert all(a == [] for a in alerts[:-1])
    assert [a.state for a in alerts[-1]] == ["firing"]
    assert alerts[-1][0].reviews == CONFIG.min_reviews


def test_minimum_negative_count_applies_too() -> None:
    config = AlertConfig(
        min_reviews=6, min_negative=6, warn_margin=0.05, critical_margin=0.5, resolve_margin=0
    )
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    fired = [
        k
        for k in range(12)
        if detector.observe(state, review(k, T0 + k * 1000, negative=k % 6 != 0), prior=0.01).alerts
    ]
    assert fired == [7]  # the 6th negative review (reviews 0 and 6 are positive)


@pytest.mark.parametrize(("share", "seed"), [(0.05, 1), (0.1, 2), (0.3, 3), (0.5, 4)])
def test_stable_item_never_fires(share: float, seed: int) -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    alerts = []
    for r in stream(share, count=3000, every_ms=20_000, seed=seed):  # 3 reviews a minute
        alerts += detector.observe(state, r, prior=share).alerts
    assert alerts == []


def test_collapse_fires_once_then_escalates_once() -> None:
    detector = SentimentDetector(CONFIG)
    state = settled(detector)
    events = burst(detector, state, T0 + 120 * MIN, 40)
    kinds = [kind for _, ks in events for kind in ks]
    assert kinds == ["firing:warning:threshold", "firing:critical:escalated"]
    assert events[0][0] < events[1][0] < 30
    assert state.firing


def test_severity_is_critical_at_once_when_the_margin_is_reached_at_first_test() -> None:
    config = AlertConfig(warn_margin=0.2, critical_margin=0.2)
    detector = SentimentDetector(config)
    state = settled(detector)
    kinds = [kind for _, ks in burst(detector, state, T0 + 120 * MIN, 40) for kind in ks]
    assert kinds == ["firing:critical:threshold"]


def test_alerts_of_one_episode_share_its_id_and_have_distinct_alert_ids() -> None:
    detector = SentimentDetector(CONFIG)
    state = settled(detector)
    alerts = []
    for k in range(40):
        alerts += detector.observe(
            state, review(500 + k, T0 + (120 + k) * MIN, negative=True)
        ).alerts
    for k in range(60):
        alerts += detector.observe(
            state, review(900 + k, T0 + (160 + k) * MIN, negative=False)
        ).alerts
    assert [a.state for a in alerts] == ["firing", "firing", "resolved"]
    assert len({a.episode_id for a in alerts}) == 1
    assert len({a.alert_id for a in alerts}) == 3
    resolved = alerts[-1]
    assert resolved.reason == "recovered" and resolved.severity == "critical"
    assert resolved.alert_id.endswith(":resolved:critical")
    assert resolved.lower <= resolved.threshold and resolved.z == CONFIG.z_resolve
    assert alerts[0].episode_start <= alerts[0].ts < alerts[0].episode_start + CONFIG.bucket_ms


def test_resolution_needs_the_window_to_clear_hysteresis() -> None:
    detector = SentimentDetector(CONFIG)
    state = settled(detector)
    burst(detector, state, T0 + 120 * MIN, 30)
    # Half the window positive again is not a recovery: the lower bound is still high.
    assert burst(detector, state, T0 + 150 * MIN, 15, negative=False) == []
    events = burst(detector, state, T0 + 165 * MIN, 40, negative=False)
    assert [ks for _, ks in events] == [["resolved:critical:recovered"]]
    assert events[0][0] >= 3  # a third of the window still negative: resolved
    assert not state.firing


def test_a_thin_window_that_is_still_mostly_negative_does_not_end_the_episode() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    for r in stream(0.3, count=180, seed=11):
        detector.observe(state, r, prior=0.3)
    assert not state.firing
    assert [k for _, ks in burst(detector, state, T0 + 180 * MIN, 30) for k in ks]
    # Quiet for 35 minutes, then a trickle of 3 negative of 4: the incident goes on.
    trickle = [True, True, False, True]
    for k, negative in enumerate(trickle):
        r = review(7000 + k, T0 + (245 + k) * MIN, negative=negative)
        assert detector.observe(state, r).alerts == []
    assert state.firing
    events = burst(detector, state, T0 + 250 * MIN, 30, negative=False)
    assert [ks for _, ks in events] == [["resolved:critical:recovered"]]


def test_resolution_on_evidence_waits_for_a_clean_window() -> None:
    detector = SentimentDetector(AlertConfig(resolve_on_evidence=True))
    state = settled(detector)
    burst(detector, state, T0 + 120 * MIN, 30)
    events = burst(detector, state, T0 + 150 * MIN, 60, negative=False)
    assert [ks for _, ks in events] == [["resolved:critical:recovered"]]
    assert events[0][0] == 25  # only once every negative has left the window (at 175 min)


def test_episode_ends_when_the_window_empties() -> None:
    detector = SentimentDetector(CONFIG)
    state = settled(detector)
    burst(detector, state, T0 + 120 * MIN, 20)
    still = detector.advance(state, T0 + 145 * MIN)  # reviews still in the window
    assert state.firing and all(a.state == "firing" for a in still)
    alerts = detector.advance(state, T0 + 180 * MIN)
    assert [(a.state, a.reason, a.reviews) for a in alerts] == [("resolved", "no_data", 0)]
    assert state.phase_name == "cooldown"


def test_cooldown_blocks_a_new_episode_then_a_new_one_gets_a_new_id() -> None:
    config = AlertConfig(cooldown_ms=60 * MIN)
    detector = SentimentDetector(config)
    state = settled(detector)
    first = [a for _, ks in burst(detector, state, T0 + 120 * MIN, 25) for a in ks]
    assert first and state.firing
    first_episode = state.episode_id
    resolved = detector.advance(state, T0 + 185 * MIN)  # empty window: ends (no_data)
    assert [a.state for a in resolved] == ["resolved"]
    # Bad again 5 minutes later, inside the cooldown: nothing.
    assert burst(detector, state, T0 + 190 * MIN, 30) == []
    # Still bad once the cooldown is over: a new episode.
    events = burst(detector, state, T0 + 250 * MIN, 10)
    assert events and events[0][1][0].startswith("firing")
    assert state.episode_id != first_episode


def test_an_incident_does_not_poison_the_item_baseline() -> None:
    detector = SentimentDetector(CONFIG)
    state = settled(detector, minutes=180)
    before = detector.baseline(state)
    burst(detector, state, T0 + 180 * MIN, 90)  # 1.5 h of negative reviews
    for r in stream(0.1, start=T0 + 270 * MIN, count=240, seed=9, first=5000):
        detector.observe(state, r)
    assert state.phase_name in ("ok", "cooldown")
    assert detector.baseline(state) == pytest.approx(before, abs=0.03)


def test_late_review_within_grace_counts_in_its_own_bucket() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    detector.observe(state, review(0, T0 + 10 * MIN + 30_000, negative=False))
    # Bucket [5, 10) min ends at 10 min; the watermark is 8.5 min: still open.
    result = detector.observe(state, review(1, T0 + 9 * MIN, negative=True))
    assert result.accepted and not result.too_late
    assert state.ring.get((T0 + 9 * MIN) // CONFIG.bucket_ms)[:2] == (1, 1)
    assert detector.window(state).reviews == 2


def test_review_after_its_bucket_closed_is_dropped_and_flagged() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    detector.observe(state, review(0, T0 + 13 * MIN, negative=False))
    result = detector.observe(state, review(1, T0 + 9 * MIN, negative=True))
    assert result.too_late and result.alerts == []
    assert state.late == 1 and detector.window(state).reviews == 1
    # The stream's clock counts too: a fresh item still drops what the watermark passed.
    fresh = detector.new_state("i2", "home")
    late = detector.observe(fresh, review(2, T0, negative=True, item="i2"), now=T0 + 20 * MIN)
    assert late.too_late and detector.window(fresh).reviews == 0


def test_out_of_order_input_gives_the_same_window_as_sorted_input() -> None:
    reviews = list(stream(0.4, count=40, every_ms=30_000))
    shuffled = reviews[:]
    rng = random.Random(3)
    for i in range(0, len(shuffled) - 2, 3):  # swap within ~1 minute: inside the grace
        j = i + rng.randrange(3)
        shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
    d = SentimentDetector(CONFIG)
    a, b = d.new_state("i1"), d.new_state("i1")
    for r in reviews:
        d.observe(a, r)
    for r in shuffled:
        assert d.observe(b, r).accepted
    assert a.ring.encode() == b.ring.encode()


def test_evidence_keeps_the_most_negative_recent_reviews_length_limited() -> None:
    config = AlertConfig(evidence_count=2, evidence_chars=10)
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    alerts = []
    for k in range(8):
        r = review(k, T0 + k * MIN, negative=True, p=0.6 + k * 0.05, text="质量太差了" * 5)
        alerts += detector.observe(state, r, prior=0.05).alerts
    evidence = alerts[0].evidence
    assert alerts[0].reviews == 6  # fired on review 5: the two most negative are 5 and 4
    assert [e.review_id for e in evidence] == ["i1-r5", "i1-r4"]
    assert all(e.excerpt is not None and len(e.excerpt) <= 10 for e in evidence)
    assert evidence[0].p_negative >= evidence[1].p_negative


def test_private_mode_keeps_no_text_in_state_or_alerts() -> None:
    config = AlertConfig(evidence_text=False)
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    alerts = []
    for k in range(10):
        r = review(k, T0 + k * MIN, negative=True, text="秘密的评论内容")
        alerts += detector.observe(state, r, prior=0.05).alerts
    assert alerts and all(e.excerpt is None for e in alerts[0].evidence)
    assert alerts[0].evidence and "秘密".encode() not in state.to_bytes()
    assert b"excerpt" not in encode_alert(alerts[0])


def test_state_is_compact_and_restoring_it_mid_episode_changes_nothing() -> None:
    detector = SentimentDetector(CONFIG)
    reviews = list(stream(0.1, count=120, seed=7))
    reviews += [
        review(900 + k, T0 + (120 + k) * MIN, negative=True, text="差" * 200) for k in range(30)
    ]
    reviews += list(stream(0.1, start=T0 + 150 * MIN, count=90, seed=8, first=2000))
    plain, restored = detector.new_state("i1", "home"), detector.new_state("i1", "home")
    out_plain, out_restored = [], []
    for r in reviews:
        out_plain += detector.observe(plain, r, prior=0.1).alerts
        restored = detector.load(restored.to_bytes())
        out_restored += detector.observe(restored, r, prior=0.1).alerts
        assert len(restored.to_bytes()) < 1600  # 3 excerpts of 120 CJK chars: ~1.1 kB
    assert [encode_alert(a) for a in out_plain] == [encode_alert(a) for a in out_restored]
    assert plain.to_bytes() == restored.to_bytes()
    assert [a.state for a in out_plain] == ["firing", "firing", "resolved"]


def test_unknown_state_bytes_are_refused() -> None:
    with pytest.raises(ValueError):
        SentimentDetector(CONFIG).load(b"[99]")


def _mixed_stream() -> list:
    reviews = []
    for item, share in (("i1", 0.1), ("i2", 0.2), ("i3", 0.05)):
        reviews += list(stream(share, count=200, every_ms=45_000, item=item, seed=1))
    # i3 collapses after 80 minutes.
    reviews = [r for r in reviews if not (r.item_id == "i3" and r.ts >= T0 + 80 * MIN)]
    reviews += [
        review(5000 + k, T0 + 80 * MIN + k * 50_000, negative=True, item="i3") for k in range(40)
    ]
    return sorted(reviews, key=lambda r: (r.ts, r.review_id))


def test_replay_is_deterministic_and_survives_a_changelog_roundtrip() -> None:
    reviews = _mixed_stream()
    runs = []
    for roundtrip in (False, False, True):
        monitor = SentimentMonitor(CONFIG, roundtrip=roundtrip)
        alerts = [encode_alert(a) for r in reviews for a in monitor.observe(r).alerts]
        alerts += [encode_alert(a) for a in monitor.tick(reviews[-1].ts + 2 * CONFIG.window_ms)]
        runs.append(alerts)
    assert runs[0] == runs[1] == runs[2]
    assert runs[0] and all(b'"item_id":"i3"' in a for a in runs[0])


def test_a_noisy_scorer_rise_fires_only_when_the_config_knows_the_scorer() -> None:
    """Labels of a scorer with sensitivity 0.75 and false-positive rate 0.25: an item's
    negative labels go from 25% to 65%, i.e. its true negative share from 0 to 80%."""

    def spread(k: int, share: float) -> bool:  # evenly spread: any 20 in a row hold 20·share
        return int((k + 1) * share) > int(k * share)

    reviews = [review(k, T0 + k * MIN, negative=spread(k, 0.25)) for k in range(240)]
    reviews += [review(k, T0 + k * MIN, negative=spread(k, 0.65)) for k in range(240, 300)]
    fired = {}
    for name, config in {
        "perfect": AlertConfig(),
        "noisy": AlertConfig(scorer_sensitivity=0.75, scorer_false_positive_rate=0.25),
    }.items():
        detector = SentimentDetector(config)
        state = detector.new_state("i1", "home")
        fired[name] = [
            a.state for r in reviews for a in detector.observe(state, r, prior=0.25).alerts
        ]
    assert fired["perfect"] == [] and fired["noisy"][:1] == ["firing"]


def _spread(shares: list[float]) -> list[bool]:
    """Deterministic labels whose running count follows ``shares`` (no sampling noise)."""
    out, total = [], 0.0
    for share in shares:
        out.append(int(total + share) > int(total))
        total += share
    return out


def _feed(detector: SentimentDetector, state: ItemState, labels: list[bool], start: int) -> list:
    alerts = []
    for k, negative in enumerate(labels):
        r = review(20_000 + start // MIN + k, start + k * MIN, negative=negative)
        alerts += detector.observe(state, r, prior=0.1).alerts
    return alerts


def test_a_weak_incident_is_held_out_of_the_item_baseline_while_it_lasts() -> None:
    """40% negative for 90 min after 3 h at 10%: every window is elevated (lower bound at
    z_resolve ~0.27 > 0.1 + resolve_margin) but none fires (at z_fire ~0.19 < 0.1 + 0.2).
    Without holding, the buckets leaving the window lift the baseline toward 0.4."""
    baselines = {}
    for hold in (0, CONFIG.baseline_hold_ms):
        detector = SentimentDetector(AlertConfig(baseline_hold_ms=hold))
        state = detector.new_state("i1", "home")
        assert _feed(detector, state, _spread([0.1] * 180), T0) == []
        before = detector.baseline(state)
        assert _feed(detector, state, _spread([0.4] * 90), T0 + 180 * MIN) == []
        baselines[hold] = (before, detector.baseline(state))
        if hold:
            # The incident's 60 reviews after its first window (and the last 10%-bucket,
            # which left while the window was already elevated).
            assert 60 <= state.held_reviews <= 65 and state.held_negative >= 22
            assert detector.load(state.to_bytes()).to_bytes() == state.to_bytes()
    before, during = baselines[CONFIG.baseline_hold_ms]
    assert during == pytest.approx(before, abs=0.01)
    unheld_before, unheld_during = baselines[0]
    assert unheld_before == pytest.approx(before)
    assert unheld_during > before + 0.04


def test_held_buckets_are_folded_once_the_window_clears() -> None:
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    _feed(detector, state, _spread([0.1] * 180), T0)
    _feed(detector, state, _spread([0.4] * 60), T0 + 180 * MIN)
    assert state.held_reviews >= 30
    weight = detector.baseline_weight(state)
    _feed(detector, state, _spread([0.1] * 40), T0 + 240 * MIN)
    assert state.held_since is None and state.held_reviews == 0
    # Nothing is lost: the released reviews (decayed like the rest) are in the baseline.
    assert detector.baseline_weight(state) > weight + 30 * CONFIG.decay_per_bucket**12


def test_a_lasting_shift_that_never_fires_is_adopted_after_the_hold() -> None:
    """A slow drift 10% → 40% over 4 h, then 40% for 4 h: no alert, and the baseline follows
    once buckets have been held for ``baseline_hold_ms`` (2 h): it lags, it is not frozen."""
    detector = SentimentDetector(CONFIG)
    state = detector.new_state("i1", "home")
    ramp = [0.1 + 0.3 * k / 240 for k in range(240)]
    labels = _spread([0.1] * 180 + ramp + [0.4] * 240)
    trace = []
    for k, negative in enumerate(labels):
        r = review(k, T0 + k * MIN, negative=negative)
        assert detector.observe(state, r, prior=0.1).alerts == []
        trace.append(detector.baseline(state))
    assert trace[179] < 0.15
    assert trace[-1] > 0.25
    assert max(trace) < 0.42


def test_version_1_state_bytes_still_load_with_nothing_held() -> None:
    detector = SentimentDetector(CONFIG)
    state = settled(detector)
    data = orjson.loads(state.to_bytes())
    old = orjson.dumps([1, *data[1:14]])
    restored = detector.load(old)
    assert restored.held_since is None and restored.held_reviews == 0
    assert restored.to_bytes() == state.to_bytes()


# -- the likelihood-ratio fire test (fire_test="llr") ------------------------------------------
NOISY = {"scorer_sensitivity": 0.75, "scorer_false_positive_rate": 0.25}
# A scorer whose confident scores say more than its hard labels: p_negative 0.9+ is 8x more
# likely for a truly negative review, 0.0-0.1 8x less likely; the middle bins say little.
RATIOS = "0.125,0.4,0.6,0.8,0.9,1.1,1.3,1.6,2.5,8"


def _scored(k: int, ts: int, p: float) -> ScoredReview:
    return review(k, ts, negative=p > 0.5, p=p)


def test_llr_with_hard_ratios_weighs_labels_like_a_binomial_test() -> None:
    config = AlertConfig(fire_test="llr", llr_rise=0.5, **NOISY)
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    for k in range(4):
        detector.observe(state, _scored(k, T0 + k * MIN, 0.9), prior=0.35)
    # Label baseline 0.35 is a true share of 0.2; alternative 0.7; 4 negative labels.
    expected = 4 * math.log((0.7 * 3 + 0.3) / (0.2 * 3 + 0.8))
    assert detector.llr(state) == pytest.approx(expected)


def test_llr_fires_on_confident_scores_sooner_than_on_the_same_labels_alone() -> None:
    """Same hard labels (10 of 13 negative), but the negatives are confident (p 0.97) and
    the positives lukewarm: the score-weighted test fires, the label-only one does not."""
    ps = [0.97, 0.97, 0.35, 0.97, 0.97, 0.97, 0.35, 0.97, 0.97, 0.35, 0.97, 0.97, 0.97]
    fired = {}
    for name, ratios in {"labels": "", "scores": RATIOS}.items():
        config = AlertConfig(
            fire_test="llr", llr_fire=5.0, scorer_ratios=ratios, min_negative=0, **NOISY
        )
        detector = SentimentDetector(config)
        state = detector.new_state("i1", "home")
        alerts = [
            a
            for k, p in enumerate(ps)
            for a in detector.observe(state, _scored(k, T0 + k * 2 * MIN, p), prior=0.35).alerts
        ]
        fired[name] = alerts
    assert fired["labels"] == []
    assert [a.state for a in fired["scores"]] == ["firing"]
    alert = fired["scores"][0]
    assert alert.llr is not None and alert.llr >= 5.0
    value = orjson.loads(encode_alert(alert))
    assert value["score"]["method"] == "llr" and value["score"]["llr"] == round(alert.llr, 4)


@pytest.mark.parametrize("seed", range(4))
def test_llr_stable_noisy_item_stays_quiet(seed: int) -> None:
    """A stable item seen through the noisy scorer (35% negative labels) for 10 h."""
    config = AlertConfig(fire_test="llr", llr_fire=6.0, **NOISY)
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    for r in stream(0.35, count=600, seed=seed):
        assert detector.observe(state, r, prior=0.35).alerts == []


def test_llr_state_roundtrips_and_old_states_load_without_score_bins() -> None:
    config = AlertConfig(fire_test="llr", **NOISY)
    detector = SentimentDetector(config)
    state = detector.new_state("i1", "home")
    for k in range(5):
        detector.observe(state, _scored(k, T0 + k * MIN, 0.95), prior=0.3)
    assert detector.load(state.to_bytes()).to_bytes() == state.to_bytes()
    data = orjson.loads(state.to_bytes())
    head, rows = data[4]
    v2 = orjson.dumps([2, *data[1:4], [head, [row[:5] for row in rows]], *data[5:]])
    restored = detector.load(v2)
    assert restored.ring.totals()[:2] == state.ring.totals()[:2]
    assert detector.llr(restored) == 0.0  # no histogram yet: no llr evidence


def test_score_bins_follow_p_negative() -> None:
    assert [score_bin(p) for p in (0.0, 0.05, 0.5, 0.97, 1.0)] == [0, 0, 5, 9, 9]
    assert window_llr([0] * 10, [1.0] * 10, 0.2, 0.7) == 0.0
