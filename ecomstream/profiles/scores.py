"""The part of a ``review-scores`` record that profiles and item state use.

Why a tolerant parser returning ``None``: review-scores is produced by our own
scorer, but replayed files and old versions may lack a field; a record we cannot
read is skipped (and counted by the caller), never a crash.

>>> s = parse_review_score({"review_id": "r1", "user_id": "u1", "item_id": "i1",
...     "category": "books", "label": "negative",
...     "probabilities": {"negative": 0.9, "positive": 0.1}, "ts": 1767225600000})
>>> s.p_negative, s.p_positive, s.negative
(0.9, 0.1, True)
>>> parse_review_score({"item_id": "i1"}) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class ReviewScore(NamedTuple):
    review_id: str
    user_id: str
    item_id: str
    category: str
    p_negative: float
    p_positive: float
    ts: int

    @property
    def negative(self) -> bool:
        return self.p_negative > self.p_positive


def parse_review_score(value: Mapping[str, Any]) -> ReviewScore | None:
    try:
        probs = value.get("probabilities") or {}
        p_pos: Any = probs.get("positive")
        p_neg: Any = probs.get("negative")
        if p_pos is None and p_neg is None:
            label = value["label"]
            p_pos = 1.0 if label == "positive" else 0.0
        if p_pos is None:
            p_pos = 1.0 - float(p_neg)
        if p_neg is None:
            p_neg = 1.0 - float(p_pos)
        ts = value.get("ts", value.get("scored_at"))
        return ReviewScore(
            str(value["review_id"]),
            str(value["user_id"]),
            str(value["item_id"]),
            str(value.get("category", "")),
            float(p_neg),
            float(p_pos),
            int(ts),
        )
    except (KeyError, TypeError, ValueError):
        return None


def rating_as_score(
    review_id: str, user_id: str, item_id: str, category: str, rating: int, ts: int
) -> ReviewScore | None:
    """Stand-in sentiment from a star rating: ≤ 2 negative, ≥ 4 positive, 3 carries none.

    >>> rating_as_score("r", "u", "i", "c", 2, 1).p_negative
    1.0
    >>> rating_as_score("r", "u", "i", "c", 3, 1) is None
    True
    """
    if rating <= 2:
        return ReviewScore(review_id, user_id, item_id, category, 1.0, 0.0, ts)
    if rating >= 4:
        return ReviewScore(review_id, user_id, item_id, category, 0.0, 1.0, ts)
    return None
