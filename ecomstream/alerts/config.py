"""Parameters of the sentiment windows, baselines and the alert detector.

Why one frozen dataclass: the detector is a pure function of (config, input order),
so the config is what makes two runs comparable; evaluation reports print it.
``from_env`` reads ``ECOMSTREAM_ALERT_<FIELD>`` so the worker is configured like
everything else in ecomstream.

>>> config = AlertConfig()
>>> config.window_ms // 60_000, config.bucket_ms // 60_000, config.grace_ms // 1000
(30, 5, 120)
>>> AlertConfig.from_env({"ECOMSTREAM_ALERT_MIN_REVIEWS": "8",
...                       "ECOMSTREAM_ALERT_EVIDENCE_TEXT": "false"}).min_reviews
8
>>> noisy = AlertConfig(scorer_sensitivity=0.76, scorer_false_positive_rate=0.24)
>>> round(noisy.label_prior, 3), round(noisy.warn_rise, 3)
(0.318, 0.104)
>>> AlertConfig(grace_ms=40 * 60_000)
Traceback (most recent call last):
...
ValueError: grace_ms must be at most window_ms - bucket_ms (1500000), got 2400000
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

ENV_PREFIX: Final = "ECOMSTREAM_ALERT_"
MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Every knob of the sentiment-alert logic (times in event-time milliseconds)."""

    # Windows: the current window is the newest ``window_buckets`` buckets of ``bucket_ms``.
    bucket_ms: int = 5 * MINUTE_MS
    window_buckets: int = 6
    # Reviews older than (max event time seen - grace) whose bucket has closed are dropped.
    grace_ms: int = 2 * MINUTE_MS

    # Baselines: exponentially decayed counts of reviews that left the window (item) or whose
    # bucket closed (category), shrunk toward the level above with a pseudo-count.
    baseline_half_life_ms: int = 6 * 60 * MINUTE_MS
    item_pseudo_count: float = 10.0  # item baseline ← category prior
    category_pseudo_count: float = 30.0  # category prior ← global_prior
    global_prior: float = 0.15  # negative share assumed before a category has data

    # Detector: Wilson score bounds of the window's negative share.
    z_fire: float = 3.0  # one-sided ~0.13% per test at the boundary
    z_resolve: float = 1.645  # one-sided 5%
    min_reviews: int = 6
    min_negative: int = 5
    warn_margin: float = 0.20  # fire: lower bound > baseline + warn_margin
    critical_margin: float = 0.40  # critical: lower bound > baseline + critical_margin
    resolve_margin: float = 0.10  # resolve: lower bound at z_resolve <= baseline + resolve_margin
    # True: resolve only on evidence of recovery (upper bound at z_resolve below baseline +
    # resolve_margin) or on an empty window; slow for items with a few reviews an hour.
    resolve_on_evidence: bool = False
    cooldown_ms: int = 60 * MINUTE_MS  # after a resolution, no new episode for this long
    # Holding a developing incident out of the item baseline: a bucket that leaves the window
    # while the window is elevated (Wilson lower bound at z_resolve above baseline +
    # resolve_margin) is held back, not folded. Held buckets are dropped if the item fires,
    # folded into the baseline once the window's share is back under baseline +
    # resolve_margin, and folded anyway after ``baseline_hold_ms`` (a lasting shift that
    # never fires is adopted). 0: fold every bucket as it leaves (no holding).
    baseline_hold_ms: int = 2 * 60 * MINUTE_MS

    # The scorer's known error rates (measure them on held-out labelled reviews): the share
    # of truly negative reviews it labels negative, and of truly positive ones. Why:
    # ``global_prior`` and the margins are shares and rises of the *true* negative share,
    # but the detector only sees labels, which show a true share q as
    # fpr + (sensitivity - fpr)·q: a rise shrinks by (sensitivity - fpr), and the share
    # assumed before any data is lifted by the false positives. Learned baselines come from
    # the same labels and need no correction. 1 and 0: a perfect scorer (the rating
    # stand-in). The quick model on the corpus test split: 0.76 and 0.24.
    scorer_sensitivity: float = 1.0
    scorer_false_positive_rate: float = 0.0

    # Evidence: the most negative reviews of the window, carried by the alert.
    evidence_count: int = 3
    evidence_chars: int = 120
    evidence_text: bool = True  # False: review ids only, no text kept in state or alerts

    def __post_init__(self) -> None:
        if self.bucket_ms <= 0 or self.window_buckets < 1:
            raise ValueError("bucket_ms and window_buckets must be positive")
        if not 0 <= self.grace_ms <= self.window_ms - self.bucket_ms:
            raise ValueError(
                f"grace_ms must be at most window_ms - bucket_ms "
                f"({self.window_ms - self.bucket_ms}), got {self.grace_ms}"
            )
        if self.baseline_half_life_ms <= 0:
            raise ValueError("baseline_half_life_ms must be positive")
        if self.item_pseudo_count <= 0 or self.category_pseudo_count <= 0:
            raise ValueError("pseudo-counts must be positive")
        if not 0.0 < self.global_prior < 1.0:
            raise ValueError("global_prior must be in (0, 1)")
        if self.z_fire <= 0 or self.z_resolve <= 0:
            raise ValueError("z values must be positive")
        if self.min_reviews < 1 or not 0 <= self.min_negative <= self.min_reviews:
            raise ValueError("need min_reviews >= 1 and 0 <= min_negative <= min_reviews")
        if not 0.0 <= self.resolve_margin <= self.warn_margin <= self.critical_margin:
            raise ValueError("need 0 <= resolve_margin <= warn_margin <= critical_margin")
        if not 0.0 <= self.scorer_false_positive_rate < self.scorer_sensitivity <= 1.0:
            raise ValueError("need 0 <= scorer_false_positive_rate < scorer_sensitivity <= 1")
        if self.baseline_hold_ms < 0:
            raise ValueError("baseline_hold_ms must be >= 0")
        if self.cooldown_ms < self.bucket_ms:
            # Episode ids hash the start bucket: two episodes must never start in one bucket.
            raise ValueError("cooldown_ms must be at least bucket_ms")
        if self.evidence_count < 0 or self.evidence_chars < 1:
            raise ValueError("evidence_count must be >= 0 and evidence_chars >= 1")

    @property
    def window_ms(self) -> int:
        return self.bucket_ms * self.window_buckets

    @property
    def hold_buckets(self) -> int:
        """Longest a bucket is held out of the item baseline, in buckets (0: never held)."""
        return -(-self.baseline_hold_ms // self.bucket_ms)

    @property
    def discrimination(self) -> float:
        """How much of a rise of the true negative share the labels show (1: all of it)."""
        return self.scorer_sensitivity - self.scorer_false_positive_rate

    @property
    def label_prior(self) -> float:
        """``global_prior`` as a share of negative *labels*."""
        return self.scorer_false_positive_rate + self.discrimination * self.global_prior

    @property
    def warn_rise(self) -> float:
        """``warn_margin`` as a rise of the negative-label share."""
        return self.discrimination * self.warn_margin

    @property
    def critical_rise(self) -> float:
        return self.discrimination * self.critical_margin

    @property
    def resolve_rise(self) -> float:
        return self.discrimination * self.resolve_margin

    @property
    def decay_per_bucket(self) -> float:
        """Weight a baseline count keeps after one more bucket of event time."""
        return math.exp(-math.log(2.0) * self.bucket_ms / self.baseline_half_life_ms)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
    ) -> AlertConfig:
        """Defaults overridden by ``ECOMSTREAM_ALERT_<FIELD>`` variables (e.g. ``..._Z_FIRE``)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(prefix + f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            if kind is bool:
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = kind(raw)
        return cls(**values)

    @classmethod
    def from_preset(cls, preset: Mapping[str, str], **overrides: Any) -> AlertConfig:
        """Defaults overridden by a preset of ``field -> value`` strings (and ``overrides``).

        >>> AlertConfig.from_preset(QUICK_MODEL_PRESET).scorer_sensitivity
        0.76
        """
        unknown = sorted(set(preset) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown AlertConfig fields: {', '.join(unknown)}")
        env = {ENV_PREFIX + name.upper(): value for name, value in preset.items()}
        return dataclasses.replace(cls.from_env(env), **overrides)


DEFAULT_CONFIG: Final = AlertConfig()

QUICK_MODEL_PRESET: Final[Mapping[str, str]] = {
    "scorer_sensitivity": "0.76",
    "scorer_false_positive_rate": "0.24",
    "z_fire": "2.576",
    "warn_margin": "0.20",
    "min_reviews": "8",
    "min_negative": "6",
}
"""AlertConfig fields (values as strings, as ``ECOMSTREAM_ALERT_<FIELD>`` / worker
``alert_<field>`` settings take them) for labels from the quick model
(``serving/triton_repo/review_sentiment/1``, ~78% agreement with the ratings).

Why: the defaults are tuned for a near-perfect scorer; with the quick model an incident's
30-minute window of 10–13 reviews shows only ~0.75 negative labels against a label
baseline of 0.25–0.40, just short of the default bound, so recall falls to ~0.5–0.8.
The scorer rates are the model's held-out confusion matrix (corpus test split); the
detector settings were picked from a small grid (z_fire × warn_margin × minimum counts)
replayed on seeds 1–8 and 21–36 for the highest recall with at most 1 false alarm per
10k incident-free reviews, and then checked once on held-out seeds 41–56 with::

    ecomstream evaluate alerts --simulate --seeds 41,...,56 --incidents 3 \\
        --stationary-hours 48 --stationary-scale 1,3 \\
        --model serving/triton_repo/review_sentiment/1 --set FIELD=VALUE ...

Rule: the highest tuning recall whose false-alarm rate has a 95% upper bound <= 1/10k
(z 2.576/warn 0.15/min 8,6 had recall 0.89 but 0.98 FA/10k, no headroom); ties to the
fewest false alarms. Figures (precision, recall, median delay, FA per 10k reviews):
held-out seeds 41–56: 1.00, 0.69 (33/48), 21.3 min, 0.47; seeds 1–8: 1.00, 0.75,
18.8 min, 0.39; seeds 21–36: 1.00, 0.88, 21.9 min, 0.59 (reports/alerts/quick-preset-*).
Recall is still short of the 0.9 target. Use with :meth:`AlertConfig.from_preset`.
"""
