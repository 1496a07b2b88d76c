"""Per-item sentiment state and the alert detector: ok → firing → resolved (cooldown) → ok.

Detector choice. On every review (and on every clock advance) the item's current
window — the last ``window_buckets`` event-time buckets — is tested against the
item's baseline ``p0`` (decayed history that already left the window, shrunk toward
the category prior). With ``k`` negative reviews out of ``n``:

* **fire** when ``n >= min_reviews``, ``k >= min_negative`` and the *Wilson score
  lower bound* of ``k/n`` at ``z_fire`` exceeds ``p0 + warn_margin``; severity is
  ``critical`` when it also exceeds ``p0 + critical_margin`` (an episode that starts
  as a warning is escalated once, with its own message, when it gets there);
* **resolve** (hysteresis) when the window no longer shows a rise: the Wilson lower
  bound at the laxer ``z_resolve`` is at most ``p0 + resolve_margin`` *and* the
  window's share itself is back under ``p0 + warn_margin`` (reason ``recovered``), or
  the window is empty (``no_data``). Firing needs the bound at ``z_fire`` above
  ``p0 + warn_margin``, so between the two rules there is a gap of both confidence
  and margin; the share condition keeps a thin window that is still mostly negative
  (3 of 4, say) from ending an ongoing incident, which then re-fired after the
  cooldown as a second episode (seen with a noisy scorer). The stricter rule —
  the *upper* bound below ``p0 + resolve_margin``, i.e. proof of recovery — is
  available as ``resolve_on_evidence``; at a baseline of 0.1 it needs 11 clean
  reviews in one window, which an item selling a few an hour never gets (measured
  on the simulator: episodes then stayed open 45–115 min after the recovery);
* after a resolution the item is in **cooldown** for ``cooldown_ms``: no new episode.
  While firing or cooling down, buckets do not feed the item's baseline (nor, via
  ``in_baseline``, the category's), so an incident does not poison what it is
  measured against.

The likelihood-ratio test (``fire_test="llr"``). With a noisy scorer the Wilson test on
hard labels is short of evidence: the quick model labels ~24% of positive reviews
negative, an incident lifts the label share only from ~0.3 to ~0.75, and an item gets
10–13 reviews a window. The scorer says more than its label, though: on the corpus test
split a p_negative of 0.9+ is ~8× likelier for a truly negative review, 0.0–0.1 ~7× less,
while the label alone gives ~3× either way. So each review's p_negative is counted in one
of ``SCORE_BINS`` bins per bucket, and the window's evidence is the log-likelihood ratio
of "true negative share ``q1 = q0 + llr_rise``" against "``q0``", ``q0`` being the
item's baseline mapped from labels back to a true share through the scorer's rates; each
review in a bin with likelihood ratio ``r`` adds ``log((q1·r + 1 - q1) / (q0·r + 1 - q0))``
(:func:`window_llr`). It fires at ``llr_fire`` nats, with the same volume floor
(``min_reviews``, ``min_negative``). Why this test: for a fixed window it is the most
powerful test of the two shares (Neyman–Pearson); it is still O(bins) per review from
integer counts, so the state stays small and replays stay bit-identical; and each
review's weight is bounded (``log(q1/q0)`` at most), so one confident score cannot fire
alone. Measured on tuning seeds with the quick model: recall 0.77 → 0.92 at a lower
false-alarm rate; the same test on hard labels only gets 0.88, so most of the gain is
the scores. A CUSUM of the same per-review log-likelihood ratios (evidence carried past
one window, reset by an empty window) was tried and rejected: at equal false alarms it
found no more incidents (seeds 1–16: recall 0.94 at 0.79 FA/10k vs the window's 0.92 at
0.41; seeds 21–36: 0.90 at 0.97 vs 0.96 at 0.71), and it keeps a float per item that
old evidence leaks into. Severity, escalation, resolution and the
baseline holding are unchanged (Wilson bounds on the labels).

Holding, not censoring. An incident that takes longer than a window to fire used to
lift its own baseline: its first buckets left the window and were folded in (traced on
the simulator with model labels: 0.29 → 0.43 → 0.58, never fired). Dropping every
bucket that leaves an *elevated* window was tried and rejected: it censors the upper
tail of a stable item's windows, the baseline drifts down, and false alarms rose from
0 to 18 in 120k quiet reviews. Instead such buckets are *held* (``baseline_hold_ms``):
kept out of the baseline, with their counts, until the outcome is known. If the item
fires they were the incident's first reviews and are dropped; if the window's share
comes back under ``baseline + resolve_margin`` they were noise and are folded in, late
but whole, so a stable item's baseline sees all its reviews and is not biased; if the
window stays elevated for ``baseline_hold_ms`` without firing, the shift is lasting and
is adopted (folded), so a genuine slow drift moves the baseline with that lag. Held
buckets are only baseline bookkeeping: the fire test still looks at the window alone
(testing held + window together was measured: one more incident of 24 found, false
alarms with model labels and the scorer rates 0.21 → 1.2 per 10k).

Margins and the prior are in units of the *true* negative share; the detector compares
labels, so it uses them as the scorer shows them (``AlertConfig.warn_rise`` etc.: times
the scorer's discrimination, see ``scorer_sensitivity`` in the config).

Why the Wilson bound: it is O(1) per review, it is honest for the small counts
that most items have (the normal-approximation "Wald" interval collapses to zero
width at k = 0 or k = n, and an EWMA z-score of the per-review 0/1 label assumes
a variance that the baseline share only estimates; its false-alarm rate swings
with the review rate), and "the lower 99.9% bound of the negative share is 20
points above usual" reads well in an alert. Testing against ``p0 + margin``
instead of ``p0`` asks for a *material* rise, not merely a significant one, which
keeps busy items from firing on small drifts. An exact one-sided binomial
p-value ``P(X >= k | n, p0)`` is attached to each alert for triage (computed only
when an alert is emitted). Testing after every review is a sequential test; the
margin, ``z_fire`` = 3 and the minimum counts hold the false-alarm rate down
(measured by :mod:`ecomstream.alerts.evaluate` on incident-free runs).

Why baselines lag by one window: the window being tested is then independent of
the baseline it is compared with, and the early reviews of a developing incident
are still in the window — never in the baseline — when it fires.

Determinism: everything is a function of the inputs in order; episode ids hash the
item and the start bucket, alert ids add the transition (see ``records``).

>>> detector = SentimentDetector(AlertConfig(min_reviews=4, min_negative=4))
>>> state = detector.new_state("i1", "home")
>>> t0 = 1_767_225_600_000
>>> bad = [ScoredReview(f"r{i}", "i1", "home", t0 + i * 60_000, True, 0.9) for i in range(5)]
>>> [a.state + "/" + a.severity for r in bad for a in detector.observe(state, r).alerts]
['firing/warning']
>>> state.phase_name
'firing'
>>> detector.load(state.to_bytes()).to_bytes() == state.to_bytes()
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import orjson

from ecomstream.alerts.baseline import DecayedRate
from ecomstream.alerts.config import DEFAULT_CONFIG, SCORE_BINS, AlertConfig
from ecomstream.alerts.records import (
    SEVERITIES,
    AlertRecord,
    AlertState,
    Evidence,
    ScoredReview,
    Severity,
    alert_id,
    episode_id,
    excerpt,
)
from ecomstream.alerts.windows import (
    ITEM_FIELDS,
    NEG,
    BucketRing,
    N,
    WindowStats,
    bucket_of,
    is_too_late,
)

OK, FIRING, COOLDOWN = 0, 1, 2
PHASES: Final = ("ok", "firing", "cooldown")
ITEM_CODEC_VERSION: Final = 3
# 1: without the held counts; 1, 2: buckets without the p_negative histogram (such a window
# weighs nothing in the llr test until its buckets have rolled out, at most one window).
ITEM_CODEC_VERSIONS: Final = (1, 2, 3)
# An item's bucket: the window columns (N, NEG, RATING_SUM, RATED), then how many of its
# reviews fell in each of SCORE_BINS equal-width bins of p_negative (the llr test's input).
SCORE_BIN0: Final = ITEM_FIELDS
SCORED_ITEM_FIELDS: Final = ITEM_FIELDS + SCORE_BINS
# The llr test never takes a baseline true share below this (or above 1 - it): a baseline
# of ~0 would make one confident negative review decisive.
LLR_SHARE_FLOOR: Final = 0.02
NO_BUCKET: Final = -(2**62)


def wilson_interval(negative: int, reviews: int, z: float) -> tuple[float, float]:
    """Wilson score interval of ``negative / reviews`` (``(0, 1)`` when there are no reviews).

    >>> [round(x, 3) for x in wilson_interval(8, 10, 1.96)]
    [0.49, 0.943]
    >>> [round(x, 3) for x in wilson_interval(5, 5, 3.0)]
    [0.357, 1.0]
    """
    if reviews <= 0:
        return 0.0, 1.0
    p = negative / reviews
    z2 = z * z
    denom = 1.0 + z2 / reviews
    centre = (p + z2 / (2 * reviews)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / reviews + z2 / (4 * reviews * reviews))) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_sf(k: int, n: int, p: float) -> float:
    """Exact ``P(X >= k)`` for ``X ~ Binomial(n, p)`` (log-space sum, O(n - k)).

    >>> round(binomial_sf(8, 10, 0.2), 6)
    7.8e-05
    >>> binomial_sf(0, 10, 0.3), binomial_sf(11, 10, 0.3)
    (1.0, 0.0)
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    terms = [
        log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def score_bin(p_negative: float) -> int:
    """The bin of ``p_negative`` among SCORE_BINS equal-width bins of [0, 1].

    >>> score_bin(0.0), score_bin(0.49), score_bin(0.5), score_bin(1.0)
    (0, 4, 5, 9)
    """
    return min(SCORE_BINS - 1, max(0, int(p_negative * SCORE_BINS)))


def true_share(label_share: float, config: AlertConfig) -> float:
    """The true negative share behind a negative-*label* share, given the scorer's rates,
    kept within [LLR_SHARE_FLOOR, 1 - LLR_SHARE_FLOOR].

    >>> round(true_share(0.35, AlertConfig(scorer_sensitivity=0.75,
    ...                                    scorer_false_positive_rate=0.25)), 3)
    0.2
    """
    q = (label_share - config.scorer_false_positive_rate) / config.discrimination
    return min(1.0 - LLR_SHARE_FLOOR, max(LLR_SHARE_FLOOR, q))


def window_llr(
    bins: Sequence[int], ratios: Sequence[float], null: float, alternative: float
) -> float:
    """Log-likelihood ratio (nats) of a window's reviews under a true negative share of
    ``alternative`` against ``null``.

    A review whose score fell in a bin with likelihood ratio ``r`` (P(bin | negative) /
    P(bin | positive)) has likelihood ``q·r + 1 - q`` (times a constant) when a share
    ``q`` of reviews is truly negative, so each review adds
    ``log((q1·r + 1 - q1) / (q0·r + 1 - q0))``: bounded by ``log(q1/q0)`` for a certain
    negative and ``log((1-q1)/(1-q0))`` for a certain positive, whatever the scorer says.

    >>> hard = [0.25] * 5 + [3.0] * 5  # a scorer with sensitivity 0.75, fpr 0.25
    >>> round(window_llr([0] * 9 + [4], hard, 0.2, 0.7), 3)  # 4 negative labels
    2.156
    >>> round(window_llr([4] + [0] * 9, hard, 0.2, 0.7), 3)  # 4 positive labels
    -2.328
    """
    total = 0.0
    for count, r in zip(bins, ratios, strict=True):
        if not count:
            continue
        if math.isinf(r):
            term = math.log(alternative / null)
        else:
            term = math.log((alternative * r + 1.0 - alternative) / (null * r + 1.0 - null))
        total += count * term
    return total


class Assessment(NamedTuple):
    """The numbers behind a decision at one moment (for timelines and debugging)."""

    ts: int
    reviews: int
    negative: int
    negative_share: float | None
    baseline: float
    lower: float
    upper: float
    threshold: float
    phase: str


@dataclass(slots=True)
class Observation:
    """What :meth:`SentimentDetector.observe` returns: alerts to send, and whether it counted."""

    alerts: list[AlertRecord] = field(default_factory=list)
    accepted: bool = True

    @property
    def too_late(self) -> bool:
        """The review came after its bucket closed and was dropped (count it in a metric)."""
        return not self.accepted


# Evidence entry: (p_negative rounded to 0.01, ts, review_id, excerpt or None).
EvidenceRow = tuple[float, int, str, str | None]


class ItemState:
    """Everything the detector keeps per item; serialises to a few hundred bytes."""

    __slots__ = (
        "category",
        "clock",
        "cooldown_until",
        "episode_start",
        "evidence",
        "held",
        "held_negative",
        "held_reviews",
        "held_since",
        "item_id",
        "late",
        "phase",
        "prior",
        "rate",
        "ring",
        "severity",
        "taint_until",
    )

    def __init__(self, item_id: str, category: str, config: AlertConfig) -> None:
        self.item_id = item_id
        self.category = category
        self.clock = 0  # max event time seen (or advanced to)
        self.ring = BucketRing(config.window_buckets, SCORED_ITEM_FIELDS)
        self.rate = DecayedRate()  # baseline: buckets that left the window, decayed
        # Buckets that left the window while it was elevated, not (yet) in the baseline:
        # decayed like the baseline (to fold them exactly) and as plain counts (evidence).
        self.held = DecayedRate()
        self.held_reviews = 0
        self.held_negative = 0
        self.held_since: int | None = None  # oldest held bucket
        self.prior = config.label_prior  # the category prior last handed in
        self.phase = OK
        self.severity = 0  # index into SEVERITIES of the current / last episode
        self.episode_start: int | None = None
        self.taint_until = NO_BUCKET  # buckets up to here never feed the baseline
        self.cooldown_until = 0
        self.evidence: list[EvidenceRow] = []
        self.late = 0  # reviews dropped as too late

    @property
    def phase_name(self) -> str:
        return PHASES[self.phase]

    @property
    def firing(self) -> bool:
        return self.phase == FIRING

    @property
    def episode_id(self) -> str | None:
        if self.episode_start is None:
            return None
        return episode_id(self.item_id, self.episode_start)

    def to_bytes(self) -> bytes:
        """Compact JSON array (versioned) for a Faust table with raw bytes values."""
        return orjson.dumps(
            [
                ITEM_CODEC_VERSION,
                self.item_id,
                self.category,
                self.clock,
                self.ring.encode(),
                self.rate.encode(),
                self.prior,
                self.phase,
                self.severity,
                self.episode_start,
                None if self.taint_until == NO_BUCKET else self.taint_until,
                self.cooldown_until,
                [list(row) for row in self.evidence],
                self.late,
                [*self.held.encode(), self.held_reviews, self.held_negative, self.held_since],
            ]
        )

    @classmethod
    def from_bytes(cls, raw: bytes, config: AlertConfig = DEFAULT_CONFIG) -> ItemState:
        data = orjson.loads(raw)
        if not isinstance(data, list) or not data or data[0] not in ITEM_CODEC_VERSIONS:
            raise ValueError("not an item sentiment state of a known version")
        (_, item_id, category, clock, ring, rate, prior, phase, severity, start, taint,
         cooldown, evidence, late) = data[:14]  # fmt: skip
        state = cls(item_id, category, config)
        state.clock = clock
        state.ring = BucketRing.decode(config.window_buckets, SCORED_ITEM_FIELDS, ring)
        state.rate = DecayedRate.decode(rate)
        state.prior = prior
        state.phase = phase
        state.severity = severity
        state.episode_start = start
        state.taint_until = NO_BUCKET if taint is None else taint
        state.cooldown_until = cooldown
        state.evidence = [(p, ts, rid, text) for p, ts, rid, text in evidence]
        state.late = late
        if data[0] >= 2:
            reviews, negative, at, state.held_reviews, state.held_negative, state.held_since = data[
                14
            ]
            state.held = DecayedRate(float(reviews), float(negative), at)
        return state

    def drop_held(self) -> None:
        self.held = DecayedRate()
        self.held_reviews = self.held_negative = 0
        self.held_since = None


class SentimentDetector:
    """The stream logic, stateless itself: every call works on an :class:`ItemState`."""

    def __init__(self, config: AlertConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._decay = config.decay_per_bucket

    # -- state ------------------------------------------------------------------------------
    def new_state(self, item_id: str, category: str = "unknown") -> ItemState:
        return ItemState(item_id, category, self.config)

    def load(self, raw: bytes) -> ItemState:
        return ItemState.from_bytes(raw, self.config)

    # -- stream entry points ------------------------------------------------------------------
    def observe(
        self,
        state: ItemState,
        review: ScoredReview,
        *,
        prior: float | None = None,
        now: int | None = None,
    ) -> Observation:
        """Count one scored review of ``state``'s item and return the alerts it causes.

        ``prior``: the category prior (:func:`~ecomstream.alerts.baseline.category_prior`);
        kept in the state for later :meth:`advance` calls. ``now``: the stream's max event
        time if the caller tracks one (defaults to the review's time); the watermark is
        ``max(now, everything seen) - grace_ms``. A review whose bucket closed before the
        watermark is dropped: ``Observation.accepted`` is False.
        """
        config = self.config
        if prior is not None:
            state.prior = prior
        state.category = review.category or state.category
        clock = max(state.clock, review.ts, review.ts if now is None else now)
        accepted = not is_too_late(review.ts, clock, config.grace_ms, config.bucket_ms)
        self._roll(state, clock)
        if accepted:
            rating = review.rating
            values = [1, int(review.negative), rating or 0, int(rating is not None)]
            values += [0] * SCORE_BINS
            values[SCORE_BIN0 + score_bin(review.p_negative)] = 1
            state.ring.add(bucket_of(review.ts, config.bucket_ms), values)
            if review.negative and config.evidence_count:
                self._keep_evidence(state, review)
        else:
            state.late += 1
        return Observation(self._evaluate(state), accepted)

    def advance(
        self, state: ItemState, now: int, *, prior: float | None = None
    ) -> list[AlertRecord]:
        """Move the item's clock to ``now`` without a review (a timer's tick): the window
        slides, old buckets feed the baseline, and an episode may resolve."""
        if prior is not None:
            state.prior = prior
        if state.ring.head is None or now <= state.clock:
            return []
        self._roll(state, now)
        return self._evaluate(state)

    # -- reading ------------------------------------------------------------------------------
    def window(self, state: ItemState) -> WindowStats:
        return WindowStats.of(state.ring, self.config.bucket_ms)

    def baseline(self, state: ItemState) -> float:
        """The item's expected negative share: its decayed history shrunk toward the prior."""
        head = state.ring.head
        if head is None:
            return state.prior
        return state.rate.share_at(
            head - self.config.window_buckets,
            self._decay,
            state.prior,
            self.config.item_pseudo_count,
        )

    def baseline_weight(self, state: ItemState) -> float:
        head = state.ring.head
        if head is None:
            return 0.0
        return state.rate.weight_at(head - self.config.window_buckets, self._decay)

    def elevated(self, state: ItemState) -> bool:
        """Whether the item's reviews should stay out of the category baseline right now:
        an episode is open, or the window's negative share is already above its baseline
        (Wilson lower bound at ``z_resolve`` over ``baseline + resolve_margin``), which
        catches a developing incident before it fires."""
        if state.phase == FIRING:
            return True
        totals = state.ring.totals()
        return self._elevated(totals[NEG], totals[N], self.baseline(state))

    def _elevated(self, negative: int, reviews: int, base: float) -> bool:
        if not negative:
            return False
        lower, _ = wilson_interval(negative, reviews, self.config.z_resolve)
        return lower > base + self.config.resolve_rise

    def assess(self, state: ItemState) -> Assessment:
        config = self.config
        totals = state.ring.totals()
        n, k = totals[N], totals[NEG]
        base = self.baseline(state)
        firing = state.phase == FIRING
        lower, _ = wilson_interval(k, n, config.z_resolve if firing else config.z_fire)
        _, upper = wilson_interval(k, n, config.z_resolve)
        margin = config.resolve_rise if firing else config.warn_rise
        return Assessment(
            ts=state.clock,
            reviews=n,
            negative=k,
            negative_share=k / n if n else None,
            baseline=base,
            lower=lower,
            upper=upper,
            threshold=min(1.0, base + margin),
            phase=state.phase_name,
        )

    # -- internals ------------------------------------------------------------------------------
    def _roll(self, state: ItemState, clock: int) -> None:
        state.clock = clock
        ring = state.ring
        head = bucket_of(clock, self.config.bucket_ms)
        if ring.head is not None and head <= ring.head:
            return
        config = self.config
        if state.phase != OK:
            # Buckets seen while an episode is open or cooling down stay out of the baseline.
            state.taint_until = max(state.taint_until, head)
        # Hold the leaving buckets back while the window they leave is elevated, and behind
        # buckets already held (the baseline folds in order).
        hold = (
            config.hold_buckets > 0
            and state.phase == OK
            and (state.held_since is not None or self.elevated(state))
        )
        for bucket, values in ring.roll(head):
            if bucket <= state.taint_until:
                continue
            if hold:
                state.held.fold(bucket, values[N], values[NEG], self._decay)
                state.held_reviews += values[N]
                state.held_negative += values[NEG]
                if state.held_since is None:
                    state.held_since = bucket
            else:
                state.rate.fold(bucket, values[N], values[NEG], self._decay)
        if state.held_since is not None and self._release(state, head):
            state.rate.merge(state.held, self._decay)
            state.drop_held()
        if state.evidence:
            start = (head - ring.width + 1) * self.config.bucket_ms
            state.evidence = [row for row in state.evidence if row[1] >= start]

    def _release(self, state: ItemState, head: int) -> bool:
        """Whether the held buckets go into the baseline now: the window (after a roll) is
        back under ``baseline + resolve_margin``, or the oldest held bucket left the window
        ``baseline_hold_ms`` ago. An empty window proves nothing: it keeps them held."""
        config = self.config
        if head - config.window_buckets - (state.held_since or 0) >= config.hold_buckets:
            return True
        totals = state.ring.totals()
        n, k = totals[N], totals[NEG]
        return n > 0 and k <= n * (self.baseline(state) + config.resolve_rise)

    def _keep_evidence(self, state: ItemState, review: ScoredReview) -> None:
        config = self.config
        text = None
        if config.evidence_text and review.excerpt:
            text = excerpt(review.excerpt, config.evidence_chars)
        row: EvidenceRow = (round(review.p_negative, 2), review.ts, review.review_id, text)
        rows = state.evidence
        if len(rows) >= config.evidence_count and row[:3] <= rows[-1][:3]:
            return
        rows.append(row)
        rows.sort(key=lambda r: r[:3], reverse=True)
        del rows[config.evidence_count :]

    def _evaluate(self, state: ItemState) -> list[AlertRecord]:
        config = self.config
        head = state.ring.head
        if head is None:
            return []
        if state.phase == COOLDOWN and state.clock >= state.cooldown_until:
            state.phase = OK
        totals = state.ring.totals()
        n, k = totals[N], totals[NEG]
        base = self.baseline(state)
        enough = n >= config.min_reviews and k >= config.min_negative
        if state.phase == FIRING:
            state.taint_until = max(state.taint_until, head)
            if n == 0:
                return [self._resolve(state, base, "no_data")]
            low, upper = wilson_interval(k, n, config.z_resolve)
            level = base + config.resolve_rise
            if config.resolve_on_evidence:
                recovered = upper < level
            else:
                recovered = low <= level and k <= n * (base + config.warn_rise)
            if recovered:
                return [self._resolve(state, base, "recovered")]
            if state.severity == 0 and enough:
                lower, _ = wilson_interval(k, n, config.z_fire)
                if lower > base + config.critical_rise:
                    state.severity = 1
                    threshold = base + config.critical_rise
                    return [self._alert(state, "firing", base, threshold, "escalated")]
            return []
        if state.phase == OK and enough:
            lower, _ = wilson_interval(k, n, config.z_fire)
            llr = self.llr(state, totals, base) if config.fire_test == "llr" else None
            fires = lower > base + config.warn_rise if llr is None else llr >= config.llr_fire
            if fires:
                critical = lower > base + config.critical_rise
                state.drop_held()  # the incident's first reviews: never the baseline
                state.phase = FIRING
                state.severity = int(critical)
                state.episode_start = head * config.bucket_ms
                state.taint_until = max(state.taint_until, head)
                margin = config.critical_rise if critical else config.warn_rise
                return [self._alert(state, "firing", base, base + margin, "threshold", llr)]
        return []

    def llr(
        self, state: ItemState, totals: Sequence[int] | None = None, base: float | None = None
    ) -> float:
        """The window's log-likelihood ratio (nats): true negative share ``baseline +
        llr_rise`` against ``baseline`` (both as true shares: the label baseline is mapped
        back through the scorer's rates), each review weighed by its p_negative bin."""
        config = self.config
        totals = state.ring.totals() if totals is None else totals
        base = self.baseline(state) if base is None else base
        null = true_share(base, config)
        alternative = min(1.0 - LLR_SHARE_FLOOR / 2, null + config.llr_rise)
        bins = totals[SCORE_BIN0 : SCORE_BIN0 + SCORE_BINS]
        return window_llr(bins, config.likelihood_ratios, null, alternative)

    def _resolve(self, state: ItemState, base: float, reason: str) -> AlertRecord:
        state.phase = COOLDOWN
        state.cooldown_until = state.clock + self.config.cooldown_ms
        return self._alert(state, "resolved", base, base + self.config.resolve_rise, reason)

    def _alert(
        self,
        state: ItemState,
        kind: AlertState,
        base: float,
        threshold: float,
        reason: str,
        llr: float | None = None,
    ) -> AlertRecord:
        config = self.config
        stats = self.window(state)
        z = config.z_fire if kind == "firing" else config.z_resolve
        lower, _ = wilson_interval(stats.negative, stats.reviews, z)
        _, upper = wilson_interval(stats.negative, stats.reviews, config.z_resolve)
        assert state.episode_start is not None
        episode = episode_id(state.item_id, state.episode_start)
        severity: Severity = SEVERITIES[state.severity]
        return AlertRecord(
            alert_id=alert_id(episode, kind, severity),
            episode_id=episode,
            item_id=state.item_id,
            category=state.category,
            state=kind,
            severity=severity,
            ts=state.clock,
            episode_start=state.episode_start,
            window_start=stats.start_ms,
            window_end=stats.end_ms,
            reviews=stats.reviews,
            negative=stats.negative,
            negative_share=stats.negative_share,
            mean_rating=stats.mean_rating,
            baseline=base,
            baseline_reviews=self.baseline_weight(state),
            category_prior=state.prior,
            lower=lower,
            upper=upper,
            z=z,
            threshold=min(1.0, threshold),
            p_value=binomial_sf(stats.negative, stats.reviews, base),
            reason=reason,
            evidence=tuple(
                Evidence(rid, ts, p, text if config.evidence_text else None)
                for p, ts, rid, text in state.evidence
            ),
            llr=llr,
        )
