"""Label the evaluation's reviews with an exported sentiment model instead of the ratings.

Why: in the pipeline the detector sees the model's labels, not the ratings, and the
quick model is wrong on about one review in four. The rating stand-in (and its
``label_noise``) only emulates that; this scores every review's text in-process with
the very code Triton runs (:class:`~ecomstream.inference.runtime.SentimentRuntime`),
so the evaluation measures the alerts the pipeline would raise.

Why a cache per distinct text: the simulator draws review texts from a ~17k-line
corpus, so hundreds of thousands of reviews (stationary runs) have at most that many
distinct texts; each is scored once, shortest first (less padding per batch).

>>> cache = {"好": TextScore(False, 0.1)}
>>> missing_texts(["很差劲", "好", "差", "很差劲"], cache)
['差', '很差劲']
>>> agreement = Agreement.of([(1, True), (2, False), (5, False), (3, True), (None, True)])
>>> round(agreement.accuracy, 4), agreement.to_dict()["negative_given_high"]
(0.6667, 0.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ecomstream.alerts.records import ScoredReview

NEGATIVE_LABEL = "negative"


@dataclass(frozen=True, slots=True)
class TextScore:
    """The model's verdict on one text, as the detector reads a ``review-scores`` value."""

    negative: bool
    p_negative: float


class Predicts(Protocol):
    """What :class:`ModelLabeller` needs from a model (``SentimentRuntime`` has it)."""

    def predict(self, texts: Sequence[str]) -> Any: ...


def text_scores(
    probabilities: npt.NDArray[Any], labels: Sequence[str], label_order: Sequence[str]
) -> list[TextScore]:
    """One :class:`TextScore` per row, read like the worker's ``review-scores``: negative
    when the predicted label is ``negative``, ``p_negative`` from that label's column.

    >>> text_scores(np.array([[0.8, 0.2], [0.3, 0.7]]), ["negative", "positive"],
    ...             ["negative", "positive"])
    [TextScore(negative=True, p_negative=0.8), TextScore(negative=False, p_negative=0.3)]
    """
    if NEGATIVE_LABEL not in label_order:
        raise ValueError(f"the model has no {NEGATIVE_LABEL!r} label: {list(label_order)}")
    column = list(label_order).index(NEGATIVE_LABEL)
    rows = np.asarray(probabilities, dtype=np.float64)
    return [
        TextScore(label == NEGATIVE_LABEL, round(float(row[column]), 6))
        for row, label in zip(rows, labels, strict=True)
    ]


def missing_texts(texts: Iterable[str], cache: dict[str, TextScore]) -> list[str]:
    """The distinct ``texts`` not in ``cache``, shortest first (batches pad less)."""
    return sorted({t for t in texts if t not in cache}, key=lambda t: (len(t), t))


def batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most ``size`` items.

    >>> [list(b) for b in batches(["a", "b", "c"], 2)]
    [['a', 'b'], ['c']]
    """
    if size < 1:
        raise ValueError("batch size must be positive")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def relabelled(review: ScoredReview, score: TextScore) -> ScoredReview:
    """``review`` with the model's label and probability in place of the stand-in's."""
    return dataclasses.replace(review, negative=score.negative, p_negative=score.p_negative)


@dataclass(frozen=True, slots=True)
class Agreement:
    """How labels agree with ratings: ≥ 4 stars should be positive, ≤ 2 negative.

    Why the split counts and not just accuracy: the detector sees a rise of the
    negative share, and a scorer compresses a rise of the true share by
    ``P(neg | ≤2) − P(neg | ≥4)``; 3-star reviews are reported but not scored.
    """

    low: int = 0  # reviews rated 1–2
    low_negative: int = 0
    high: int = 0  # reviews rated 4–5
    high_negative: int = 0
    mid: int = 0  # reviews rated 3
    mid_negative: int = 0

    @classmethod
    def of(cls, pairs: Iterable[tuple[int | None, bool]]) -> Agreement:
        """Count ``(rating, negative)`` pairs; reviews without a rating are skipped."""
        counts = [0] * 6
        for rating, negative in pairs:
            if rating is None:
                continue
            slot = 0 if rating <= 2 else 2 if rating >= 4 else 4
            counts[slot] += 1
            counts[slot + 1] += int(negative)
        return cls(*counts)

    @classmethod
    def of_reviews(cls, reviews: Iterable[ScoredReview]) -> Agreement:
        return cls.of((r.rating, r.negative) for r in reviews)

    def __add__(self, other: Agreement) -> Agreement:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return Agreement(*(a + b for a, b in pairs))

    @property
    def accuracy(self) -> float | None:
        rated = self.low + self.high
        if not rated:
            return None
        return (self.low_negative + self.high - self.high_negative) / rated

    def to_dict(self) -> dict[str, Any]:
        def share(k: int, n: int) -> float | None:
            return k / n if n else None

        return {
            **dataclasses.asdict(self),
            "rated": self.low + self.high,
            "accuracy": self.accuracy,
            "negative_given_low": share(self.low_negative, self.low),
            "negative_given_high": share(self.high_negative, self.high),
            "negative_given_3": share(self.mid_negative, self.mid),
        }


class ModelLabeller:
    """Scores review texts with a model (each distinct text once) and relabels reviews."""

    def __init__(
        self,
        model: Predicts,
        label_order: Sequence[str],
        *,
        name: str,
        info: dict[str, Any] | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.label_order = tuple(label_order)
        self.name = name
        self.info = info or {}
        self.batch_size = batch_size
        self.progress = progress
        self.cache: dict[str, TextScore] = {}

    @classmethod
    def load(cls, artifact_dir: Path | str, **kwargs: Any) -> ModelLabeller:
        """A labeller on an exported artifact directory (model.onnx, tokenizer.json, meta.json)."""
        from ecomstream.inference.runtime import SentimentRuntime

        runtime = SentimentRuntime(artifact_dir)
        meta = runtime.meta
        info = {
            "artifact": str(artifact_dir),
            "name": meta.name,
            "version": meta.version,
            "quantized": meta.quantized,
        }
        return cls(
            runtime, meta.labels, name=f"model {meta.name} v{meta.version}", info=info, **kwargs
        )

    def score(self, texts: Iterable[str], desc: str = "scoring") -> None:
        """Score the texts not cached yet, in batches, with a progress bar."""
        from tqdm.auto import tqdm

        todo = missing_texts(texts, self.cache)
        with tqdm(
            total=len(todo), desc=desc, unit="text", disable=not self.progress or not todo
        ) as bar:
            for batch in batches(todo, self.batch_size):
                prediction = self.model.predict(batch)
                scores = text_scores(prediction.probabilities, prediction.labels, self.label_order)
                self.cache.update(zip(batch, scores, strict=True))
                bar.update(len(batch))

    def relabel(self, reviews: Sequence[ScoredReview], desc: str = "scoring") -> list[ScoredReview]:
        """``reviews`` with the model's labels; every review needs its text (``excerpt``)."""
        texts = [r.excerpt for r in reviews]
        if any(t is None for t in texts):
            raise ValueError("model labels need every review's text; some have none")
        self.score((t for t in texts if t is not None), desc)
        return [relabelled(r, self.cache[r.excerpt]) for r in reviews if r.excerpt is not None]
