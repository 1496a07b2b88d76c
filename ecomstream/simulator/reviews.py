"""Review ratings from hidden quality, review texts from the real labelled corpus.

Why the corpus label follows the rating: the review-scoring model is trained on
the same corpus, so a collapsed item's reviews read negative to the model
exactly when their ratings drop, which is what the alert detector must see.

>>> import random
>>> writer = ReviewWriter(random.Random(3), positive=("好",), negative=("差",))
>>> good = [writer.rating(0.95) for _ in range(1000)]
>>> bad = [writer.rating(0.02) for _ in range(1000)]
>>> round(sum(good) / 1000, 1), round(sum(bad) / 1000, 1)
(4.7, 1.3)
>>> writer.text(5, 0.95), writer.text(1, 0.02)
('好', '差')
"""

from __future__ import annotations

import random
from collections.abc import Sequence

RATING_NOISE = 0.6


class ReviewWriter:
    def __init__(
        self, rng: random.Random, *, positive: Sequence[str], negative: Sequence[str]
    ) -> None:
        if not positive or not negative:
            raise ValueError("the review corpus needs positive and negative lines")
        self._rng = rng
        self._positive = positive
        self._negative = negative

    def rating(self, quality: float) -> int:
        """1 + 4·quality plus Gaussian noise, rounded into 1..5."""
        score = 1.0 + 4.0 * quality + self._rng.gauss(0.0, RATING_NOISE)
        return min(5, max(1, round(score)))

    def text(self, rating: int, quality: float) -> str:
        """Negative line for ≤ 2 stars, positive for ≥ 4; for 3 stars, positive with p=quality."""
        rng = self._rng
        if rating >= 4 or (rating == 3 and rng.random() < quality):
            return self._positive[rng.randrange(len(self._positive))]
        return self._negative[rng.randrange(len(self._negative))]
