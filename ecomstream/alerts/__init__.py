"""Product sentiment windows and sentiment alerts (risk warnings), as pure logic.

The Faust agent that consumes ``review-scores`` calls, per review (``now`` = the
partition's max event time)::

    review = ScoredReview.from_json(value)                 # ValueError → dead-letters
    item = detector.load(raw) if raw else detector.new_state(review.item_id, review.category)
    category = CategoryState.from_bytes(raw_cat, config) if raw_cat else CategoryState(name, config)
    advance_category(config, category, now)
    result = detector.observe(item, review, prior=category_prior(config, category), now=now)
    observe_category(config, category, review, now=now, in_baseline=not detector.elevated(item))
    # store item.to_bytes(), category.to_bytes(); result.too_late → metric;
    # each of result.alerts → encode_alert(alert) to sentiment-alerts, key item_id

and, once per bucket of stream time, ``detector.advance(item, now)`` for the items with an
open episode (``item.firing``). :class:`SentimentMonitor` is this wiring over plain dicts.
"""

from ecomstream.alerts.baseline import (
    CategoryState,
    advance_category,
    category_prior,
    category_window,
    observe_category,
)
from ecomstream.alerts.config import (
    DEFAULT_CONFIG,
    FULL64_MODEL_PRESET,
    QUICK_MODEL_PRESET,
    AlertConfig,
)
from ecomstream.alerts.detector import (
    Assessment,
    ItemState,
    Observation,
    SentimentDetector,
    binomial_sf,
    wilson_interval,
)
from ecomstream.alerts.monitor import SentimentMonitor
from ecomstream.alerts.records import (
    AlertRecord,
    Evidence,
    ScoredReview,
    alert_id,
    decode_alert,
    encode_alert,
    episode_id,
)
from ecomstream.alerts.windows import BucketRing, WindowStats

__all__ = [
    "DEFAULT_CONFIG",
    "FULL64_MODEL_PRESET",
    "QUICK_MODEL_PRESET",
    "AlertConfig",
    "AlertRecord",
    "Assessment",
    "BucketRing",
    "CategoryState",
    "Evidence",
    "ItemState",
    "Observation",
    "ScoredReview",
    "SentimentDetector",
    "SentimentMonitor",
    "WindowStats",
    "advance_category",
    "alert_id",
    "binomial_sf",
    "category_prior",
    "category_window",
    "decode_alert",
    "encode_alert",
    "episode_id",
    "observe_category",
    "wilson_interval",
]
