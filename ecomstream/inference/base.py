"""The scorer interface shared by the Triton client and the in-process ONNX scorer.

Why an ABC: the stream layer holds a ``Scorer`` and does not care whether the
model runs in Triton (production) or in-process (tests, tiny deployments);
both return the same :class:`SentimentScore` for the same text.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any


@dataclass(frozen=True, slots=True)
class SentimentScore:
    """One review's sentiment: label, probability per label, and the model that said so."""

    label: str
    probabilities: dict[str, float]
    model_name: str
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the ``review-scores`` topic.

        >>> SentimentScore("positive", {"negative": 0.25, "positive": 0.75}, "m", "1").to_dict()
        {'label': 'positive', 'probabilities': {'negative': 0.25, 'positive': 0.75}, \
'model_name': 'm', 'model_version': '1'}
        """
        return {
            "label": self.label,
            "probabilities": dict(self.probabilities),
            "model_name": self.model_name,
            "model_version": self.model_version,
        }


class ScoringError(Exception):
    """Base class of scorer errors."""


class ScoringRejected(ScoringError):
    """The model refused these texts (bad input): retrying cannot help; dead-letter them."""


class ScorerUnavailable(ScoringError):
    """The scorer could not answer before the caller's deadline (no label was invented)."""


class ScorerClosed(ScoringError):
    """``score()`` was called on, or was pending in, a closed scorer."""


def check_texts(texts: Sequence[str]) -> None:
    """Refuse a bare string (it is a Sequence[str] of characters, never what a caller means).

    >>> check_texts("oops")
    Traceback (most recent call last):
    ...
    TypeError: score() takes a sequence of texts, not a single str
    """
    if isinstance(texts, str | bytes):
        raise TypeError(f"score() takes a sequence of texts, not a single {type(texts).__name__}")


class Scorer(abc.ABC):
    """Scores review texts. ``score`` returns one :class:`SentimentScore` per text, in order."""

    @abc.abstractmethod
    async def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        """Score ``texts``; waits (backpressure) while the model is unavailable."""

    async def wait_ready(self, timeout: float) -> bool:
        """True once the scorer can serve, False if ``timeout`` seconds passed first."""
        return True

    @property
    def healthy(self) -> bool:
        """Whether the scorer currently expects to serve requests."""
        return True

    async def close(self) -> None:  # noqa: B027 (an optional hook: nothing to release here)
        """Release connections and sessions."""

    async def __aenter__(self) -> Scorer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
