"""In-process scorer: the exported artifact run by ONNX Runtime inside this process.

Why: tests, evaluation and small deployments without a Triton server. It runs
:class:`~ecomstream.inference.runtime.SentimentRuntime`, the very code the
Triton model runs, so both give the same labels for the same text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ecomstream.inference.base import Scorer, ScorerClosed, SentimentScore, check_texts
from ecomstream.inference.runtime import Prediction, SentimentRuntime


def scores_from_prediction(
    prediction: Prediction, labels: Sequence[str], model_name: str, model_version: str
) -> list[SentimentScore]:
    """Turn a runtime prediction into one :class:`SentimentScore` per text."""
    return [
        SentimentScore(
            label=label,
            probabilities={name: float(p) for name, p in zip(labels, row, strict=True)},
            model_name=model_name,
            model_version=model_version,
        )
        for label, row in zip(prediction.labels, prediction.probabilities, strict=True)
    ]


class OnnxScorer(Scorer):
    """Scores in a worker thread (the event loop keeps running), ``max_batch_size`` texts a run.

    Runs are serialized: with one intra-op thread, parallel runs on a couple of
    shared cores only add contention.
    """

    def __init__(
        self,
        artifact_dir: str | Path,
        *,
        intra_op_threads: int = 1,
        max_batch_size: int = 64,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.runtime = SentimentRuntime(artifact_dir, intra_op_threads=intra_op_threads)
        self.meta = self.runtime.meta
        self.max_batch_size = max_batch_size
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def model_name(self) -> str:
        return self.meta.name

    @property
    def model_version(self) -> str:
        return self.meta.version

    @property
    def healthy(self) -> bool:
        return not self._closed

    def score_sync(self, texts: Sequence[str]) -> list[SentimentScore]:
        """Blocking scoring, for scripts and evaluation."""
        results: list[SentimentScore] = []
        for start in range(0, len(texts), self.max_batch_size):
            chunk = list(texts[start : start + self.max_batch_size])
            prediction = self.runtime.predict(chunk)
            results.extend(
                scores_from_prediction(
                    prediction, self.meta.labels, self.meta.name, self.meta.version
                )
            )
        return results

    async def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        check_texts(texts)
        if self._closed:
            raise ScorerClosed("scorer is closed")
        if not texts:
            return []
        async with self._lock:
            return await asyncio.to_thread(self.score_sync, list(texts))

    async def close(self) -> None:
        self._closed = True
