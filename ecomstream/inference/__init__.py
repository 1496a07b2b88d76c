"""Review sentiment scoring: one :class:`Scorer` interface, a Triton client and an in-process one.

Modules: ``base`` (interface, result type, errors), ``runtime`` (tokenize + ONNX +
labels, shared with the Triton model), ``onnx`` (in-process scorer), ``triton``
(gRPC scorer with retry, circuit breaker, backpressure), ``resilience`` (backoff,
breaker), ``batcher`` (async micro-batcher), ``repository`` (install an artifact
into a Triton model repository), ``settings``.
"""

from __future__ import annotations

from ecomstream.inference.base import (
    Scorer,
    ScorerClosed,
    ScorerUnavailable,
    ScoringError,
    ScoringRejected,
    SentimentScore,
)
from ecomstream.inference.settings import ScoringSettings

__all__ = [
    "Scorer",
    "ScorerClosed",
    "ScorerUnavailable",
    "ScoringError",
    "ScoringRejected",
    "ScoringSettings",
    "SentimentScore",
    "build_scorer",
]


def build_scorer(settings: ScoringSettings | None = None) -> Scorer:
    """The scorer the settings ask for (imports only what that scorer needs)."""
    settings = settings or ScoringSettings()
    if settings.scorer == "onnx":
        from ecomstream.inference.onnx import OnnxScorer

        if settings.model_artifact_dir is None:
            raise ValueError("scorer=onnx needs ECOMSTREAM_MODEL_ARTIFACT_DIR")
        return OnnxScorer(
            settings.model_artifact_dir,
            intra_op_threads=settings.onnx_intra_op_threads,
            max_batch_size=settings.score_batch_size,
        )
    from ecomstream.inference.resilience import Backoff
    from ecomstream.inference.triton import TritonScorer

    return TritonScorer(
        settings.triton_grpc_url,
        settings.model_name,
        model_version=settings.model_version,
        labels=settings.labels,
        max_batch_size=settings.triton_max_batch_size,
        max_in_flight=settings.max_in_flight,
        request_timeout_s=settings.request_timeout_s,
        backoff=Backoff(initial_s=settings.retry_initial_s, max_s=settings.retry_max_s),
        circuit_failure_threshold=settings.circuit_failure_threshold,
        circuit_reset_s=settings.circuit_reset_s,
        circuit_max_reset_s=settings.circuit_max_reset_s,
        score_deadline_s=settings.score_deadline_s,
    )
