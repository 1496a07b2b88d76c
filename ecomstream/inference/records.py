"""The ``review-scores`` record: a review's ids, its sentiment and the model that gave it.

Why the excerpt: the alert detector shows the most negative reviews as
evidence without joining back to ``reviews``; ``excerpt_chars=0`` omits text.
"""

from __future__ import annotations

from typing import Any

import orjson

from ecomstream.events import ReviewEvent
from ecomstream.inference.base import SentimentScore


def score_id(review: ReviewEvent, score: SentimentScore) -> str:
    """Deterministic: the same review scored by the same model version gets the same id.

    >>> from ecomstream.events import ReviewEvent
    >>> r = ReviewEvent(event_id="e1", review_id="r1", user_id="u", item_id="i", category="c",
    ...                 rating=5, text="好", ts=1767225600000)
    >>> score_id(r, SentimentScore("positive", {"positive": 1.0}, "review_sentiment", "3"))
    'r1@review_sentiment:3'
    """
    return f"{review.review_id}@{score.model_name}:{score.model_version}"


def review_score_record(
    review: ReviewEvent,
    score: SentimentScore,
    *,
    scored_at_ms: int,
    latency_ms: float,
    excerpt_chars: int = 120,
) -> dict[str, Any]:
    return {
        "score_id": score_id(review, score),
        "review_id": review.review_id,
        "event_id": review.event_id,
        "user_id": review.user_id,
        "item_id": review.item_id,
        "category": review.category,
        "rating": review.rating,
        "label": score.label,
        "probabilities": score.probabilities,
        "model": score.model_name,
        "version": score.model_version,
        "excerpt": review.text[:excerpt_chars] if excerpt_chars > 0 else None,
        "ts": review.ts,
        "scored_at": scored_at_ms,
        "latency_ms": round(latency_ms, 3),
    }


def encode_review_score(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
