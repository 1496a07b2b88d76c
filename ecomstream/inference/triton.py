"""Async gRPC scorer against Triton's ``review_sentiment`` model.

Each :meth:`TritonScorer.score` call sends its texts as one request (chunks of
at most ``max_batch_size``); Triton's dynamic batcher merges concurrent
requests into one model execution, so callers should keep several calls in
flight (the micro-batcher and the stream's concurrency do).

Failure policy (DESIGN: a slow or absent dependency causes backpressure, never
a wrong label):

- at most ``max_in_flight`` requests are on the wire at once (semaphore);
- transient errors (server down, timeouts, model not loaded, internal errors)
  are retried with exponential backoff and jitter;
- after ``circuit_failure_threshold`` consecutive failures the circuit opens:
  ``score()`` then waits; after ``circuit_reset_s`` one probe request goes
  through and, if it succeeds, every waiter proceeds;
- the model's per-request INVALID_ARG error raises :class:`ScoringRejected`
  (dead-letter the texts), and an answer that breaks the model contract raises
  :class:`ModelContractError`; neither is retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecomstream.inference.base import (
    Scorer,
    ScorerClosed,
    ScoringError,
    ScoringRejected,
    SentimentScore,
    check_texts,
)
from ecomstream.inference.resilience import (
    Backoff,
    CircuitBreaker,
    CircuitState,
    call_with_retry,
)

log = logging.getLogger(__name__)

DEFAULT_LABELS: tuple[str, ...] = ("negative", "positive")
OUTPUTS = ("PROBABILITIES", "LABEL", "MODEL_NAME", "MODEL_VERSION")
# gRPC status codes that say "this request is wrong", not "the server is unwell".
PERMANENT_STATUSES = frozenset(
    {
        "StatusCode.INVALID_ARGUMENT",
        "StatusCode.UNIMPLEMENTED",
        "StatusCode.OUT_OF_RANGE",
        "StatusCode.PERMISSION_DENIED",
        "StatusCode.UNAUTHENTICATED",
    }
)


class ModelContractError(ScoringError):
    """The served model answered outside the contract (shape, label order): a deployment bug."""


def is_transient(exc: BaseException) -> bool:
    """Whether an error from a Triton call is worth retrying (the server may recover)."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, InferenceServerException):
        status = exc.status()
        # No status: raised by the client library itself before sending (a bug).
        return status is not None and status not in PERMANENT_STATUSES
    return isinstance(exc, TimeoutError | ConnectionError | OSError)


@dataclass
class ScorerStats:
    """Counters for metrics and tests."""

    requests: int = 0
    texts: int = 0
    failures: int = 0
    retries: int = 0
    rejected: int = 0


class TritonScorer(Scorer):
    def __init__(
        self,
        url: str = "127.0.0.1:8001",
        model_name: str = "review_sentiment",
        *,
        model_version: str = "",
        labels: Sequence[str] = DEFAULT_LABELS,
        max_batch_size: int = 64,
        max_in_flight: int = 8,
        request_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        circuit_failure_threshold: int = 5,
        circuit_reset_s: float = 2.0,
        circuit_max_reset_s: float = 15.0,
        score_deadline_s: float | None = None,
        reconnect_backoff_max_ms: int = 1_000,
        rng: random.Random | None = None,
    ) -> None:
        if max_batch_size < 1 or max_in_flight < 1:
            raise ValueError("max_batch_size and max_in_flight must be >= 1")
        self.url = url
        self.model_name = model_name
        self.model_version = model_version
        self.labels = tuple(labels)
        self.max_batch_size = max_batch_size
        self.max_in_flight = max_in_flight
        self.request_timeout_s = request_timeout_s
        self.backoff = backoff or Backoff(initial_s=0.05, max_s=2.0)
        self.breaker = CircuitBreaker(
            circuit_failure_threshold,
            circuit_reset_s,
            max_reset_timeout_s=circuit_max_reset_s,
            name=f"triton:{model_name}@{url}",
        )
        self.score_deadline_s = score_deadline_s
        self.reconnect_backoff_max_ms = reconnect_backoff_max_ms
        self.stats = ScorerStats()
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._client: Any = None
        self._closed = False

    # -- connection -------------------------------------------------------------------------

    def _get_client(self) -> Any:
        if self._closed:
            raise ScorerClosed("scorer is closed")
        if self._client is None:
            import tritonclient.grpc.aio as grpcclient
            from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE

            reconnect = max(self.reconnect_backoff_max_ms, 100)
            self._client = grpcclient.InferenceServerClient(
                self.url,
                channel_args=[
                    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
                    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
                    # Reconnect quickly once the server is back (gRPC's default backoff
                    # grows to 120 s, which would hold pending reviews long after a restart).
                    ("grpc.initial_reconnect_backoff_ms", min(100, reconnect)),
                    ("grpc.min_reconnect_backoff_ms", min(100, reconnect)),
                    ("grpc.max_reconnect_backoff_ms", reconnect),
                    ("grpc.keepalive_time_ms", 30_000),
                    ("grpc.keepalive_timeout_ms", 10_000),
                ],
            )
        return self._client

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- health -----------------------------------------------------------------------------

    @property
    def circuit_state(self) -> CircuitState:
        return self.breaker.state

    @property
    def healthy(self) -> bool:
        return not self._closed and self.breaker.state is CircuitState.CLOSED

    async def is_ready(self, timeout: float = 1.0) -> bool:
        """One check: server ready and model ready."""
        client = self._get_client()
        try:
            return bool(
                await client.is_server_ready(client_timeout=timeout)
                and await client.is_model_ready(
                    self.model_name, self.model_version, client_timeout=timeout
                )
            )
        except Exception as exc:
            if is_transient(exc):
                return False
            raise

    async def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            left = deadline - time.monotonic()
            if await self.is_ready(timeout=max(min(left, 1.0), 0.05)):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)

    # -- scoring ----------------------------------------------------------------------------

    async def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        check_texts(texts)
        if not texts:
            return []
        encoded = []
        for index, text in enumerate(texts):
            try:
                encoded.append(text.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise ScoringRejected(f"text {index} cannot be encoded as UTF-8: {exc}") from exc
        deadline = (
            None if self.score_deadline_s is None else time.monotonic() + self.score_deadline_s
        )
        chunks = [
            encoded[start : start + self.max_batch_size]
            for start in range(0, len(encoded), self.max_batch_size)
        ]
        if len(chunks) == 1:
            return await self._score_chunk(chunks[0], deadline)
        parts = await asyncio.gather(*(self._score_chunk(c, deadline) for c in chunks))
        return [score for part in parts for score in part]

    async def _score_chunk(
        self, chunk: list[bytes], deadline: float | None
    ) -> list[SentimentScore]:
        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            self.stats.retries += 1
            log.debug("triton: attempt %d failed (%s); retry in %.3fs", attempt, exc, delay)

        try:
            return await call_with_retry(
                lambda: self._infer(chunk),
                is_transient=is_transient,
                backoff=self.backoff,
                breaker=self.breaker,
                deadline=deadline,
                rng=self._rng,
                on_retry=on_retry,
            )
        except Exception as exc:
            from tritonclient.utils import InferenceServerException

            if isinstance(exc, InferenceServerException):
                self.stats.rejected += 1
                raise ScoringRejected(f"{exc.status()}: {exc.message()}") from exc
            raise

    async def _infer(self, chunk: list[bytes]) -> list[SentimentScore]:
        import tritonclient.grpc.aio as grpcclient

        client = self._get_client()
        data = np.array(chunk, dtype=np.object_).reshape(len(chunk), 1)
        text_input = grpcclient.InferInput("TEXT", list(data.shape), "BYTES")
        text_input.set_data_from_numpy(data)
        outputs = [grpcclient.InferRequestedOutput(name) for name in OUTPUTS]
        async with self._semaphore:
            self.stats.requests += 1
            try:
                result = await client.infer(
                    self.model_name,
                    [text_input],
                    model_version=self.model_version,
                    outputs=outputs,
                    client_timeout=self.request_timeout_s,
                )
            except Exception:
                self.stats.failures += 1
                if self._closed:
                    raise ScorerClosed("scorer closed while a request was in flight") from None
                raise
        self.stats.texts += len(chunk)
        return self._parse(result, len(chunk))

    def _parse(self, result: Any, n: int) -> list[SentimentScore]:
        probabilities = result.as_numpy("PROBABILITIES")
        labels = result.as_numpy("LABEL")
        names = result.as_numpy("MODEL_NAME")
        versions = result.as_numpy("MODEL_VERSION")
        if any(x is None for x in (probabilities, labels, names, versions)):
            raise ModelContractError(f"response lacks one of {OUTPUTS}")
        if probabilities.shape != (n, len(self.labels)):
            raise ModelContractError(
                f"PROBABILITIES shape {probabilities.shape}, expected {(n, len(self.labels))}"
            )
        labels = labels.reshape(-1)
        names = names.reshape(-1)
        versions = versions.reshape(-1)
        scores = []
        for row in range(n):
            label = _text(labels[row])
            expected = self.labels[int(np.argmax(probabilities[row]))]
            if label != expected:
                raise ModelContractError(
                    f"served label {label!r} disagrees with {expected!r} for probabilities "
                    f"{probabilities[row].tolist()} under label order {self.labels}"
                )
            scores.append(
                SentimentScore(
                    label=label,
                    probabilities={
                        name: float(p)
                        for name, p in zip(self.labels, probabilities[row], strict=True)
                    },
                    model_name=_text(names[row]),
                    model_version=_text(versions[row]),
                )
            )
        return scores


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
