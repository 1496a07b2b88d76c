"""TritonScorer policy with a fake gRPC client: retries, circuit, backpressure, no wrong labels."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from ecomstream.inference.base import ScorerUnavailable, ScoringRejected
from ecomstream.inference.resilience import Backoff, CircuitState
from ecomstream.inference.triton import ModelContractError, TritonScorer, is_transient

UNAVAILABLE = "StatusCode.UNAVAILABLE"


class FakeResult:
    def __init__(self, outputs: dict[str, np.ndarray]) -> None:
        self.outputs = outputs

    def as_numpy(self, name: str) -> np.ndarray | None:
        return self.outputs.get(name)


def answer(texts: Sequence[bytes], *, swap_labels: bool = False) -> FakeResult:
    """A correct answer: 'good' texts positive, the rest negative."""
    n = len(texts)
    probabilities = np.array(
        [[0.1, 0.9] if b"good" in t else [0.8, 0.2] for t in texts], dtype=np.float32
    )
    labels = [b"positive" if p[1] > p[0] else b"negative" for p in probabilities]
    if swap_labels:
        labels = [b"negative" if x == b"positive" else b"positive" for x in labels]
    column = lambda values: np.array(values, dtype=np.object_).reshape(n, 1)  # noqa: E731
    return FakeResult(
        {
            "PROBABILITIES": probabilities,
            "LABEL": column(labels),
            "MODEL_NAME": column([b"fake"] * n),
            "MODEL_VERSION": column([b"7"] * n),
        }
    )


class FakeClient:
    def __init__(self) -> None:
        self.down = False
        self.reject = False
        self.swap_labels = False
        self.delay = 0.0
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.batch_sizes: list[int] = []

    async def infer(self, model_name: str, inputs: list[Any], **kwargs: Any) -> FakeResult:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.down:
                raise InferenceServerException("connection refused", status=UNAVAILABLE)
            if self.reject:
                raise InferenceServerException(
                    "TEXT[0] is not valid UTF-8", status="StatusCode.INVALID_ARGUMENT"
                )
            texts = self._texts(inputs[0])
            self.batch_sizes.append(len(texts))
            return answer(texts, swap_labels=self.swap_labels)
        finally:
            self.in_flight -= 1

    @staticmethod
    def _texts(infer_input: Any) -> list[bytes]:
        from tritonclient.utils import deserialize_bytes_tensor

        raw = infer_input._get_content()
        return list(deserialize_bytes_tensor(raw))

    async def is_server_ready(self, **kwargs: Any) -> bool:
        if self.down:
            raise InferenceServerException("connection refused", status=UNAVAILABLE)
        return True

    async def is_model_ready(self, *args: Any, **kwargs: Any) -> bool:
        return not self.down

    async def close(self) -> None:
        pass


def make_scorer(**kwargs: Any) -> tuple[TritonScorer, FakeClient]:
    options: dict[str, Any] = {
        "backoff": Backoff(initial_s=0.001, max_s=0.01),
        "circuit_failure_threshold": 3,
        "circuit_reset_s": 0.05,
        "circuit_max_reset_s": 0.1,
    }
    options.update(kwargs)
    scorer = TritonScorer("fake:1", **options)
    client = FakeClient()
    scorer._client = client
    return scorer, client


async def test_scores_map_outputs_to_labels_in_order() -> None:
    scorer, _ = make_scorer()
    scores = await scorer.score(["good stuff", "awful", "good"])
    assert [s.label for s in scores] == ["positive", "negative", "positive"]
    assert scores[0].probabilities == pytest.approx({"negative": 0.1, "positive": 0.9})
    assert (scores[0].model_name, scores[0].model_version) == ("fake", "7")
    assert await scorer.score([]) == []


async def test_large_calls_are_split_at_max_batch_size() -> None:
    scorer, client = make_scorer(max_batch_size=4)
    scores = await scorer.score([f"good {n}" for n in range(10)])
    assert len(scores) == 10
    assert sorted(client.batch_sizes) == [2, 4, 4]


async def test_in_flight_requests_are_bounded() -> None:
    scorer, client = make_scorer(max_in_flight=3)
    client.delay = 0.02
    await asyncio.gather(*(scorer.score(["good"]) for _ in range(12)))
    assert client.max_in_flight == 3


async def test_outage_waits_opens_circuit_and_recovers_without_wrong_labels() -> None:
    scorer, client = make_scorer()
    client.down = True
    pending = [asyncio.create_task(scorer.score(["good", "bad"])) for _ in range(5)]
    await asyncio.sleep(0.15)
    assert scorer.circuit_state is not CircuitState.CLOSED
    assert not scorer.healthy
    assert not any(t.done() for t in pending)  # waiting: no error, no invented label
    assert not await scorer.wait_ready(0.05)
    client.down = False
    assert await scorer.wait_ready(1.0)
    results = await asyncio.wait_for(asyncio.gather(*pending), 2)
    assert all([s.label for s in r] == ["positive", "negative"] for r in results)
    assert scorer.healthy
    assert scorer.stats.retries > 0 and scorer.breaker.times_opened >= 1


async def test_deadline_gives_unavailable_not_a_label() -> None:
    scorer, client = make_scorer(score_deadline_s=0.1)
    client.down = True
    with pytest.raises(ScorerUnavailable):
        await scorer.score(["good"])


async def test_invalid_argument_is_rejected_without_retry() -> None:
    scorer, client = make_scorer()
    client.reject = True
    with pytest.raises(ScoringRejected, match="INVALID_ARGUMENT"):
        await scorer.score(["good"])
    assert client.calls == 1
    assert scorer.circuit_state is CircuitState.CLOSED


async def test_unencodable_text_is_rejected_before_sending() -> None:
    scorer, client = make_scorer()
    with pytest.raises(ScoringRejected):
        await scorer.score(["\ud800"])
    assert client.calls == 0


async def test_label_order_mismatch_is_a_contract_error() -> None:
    scorer, client = make_scorer()
    client.swap_labels = True
    with pytest.raises(ModelContractError):
        await scorer.score(["good"])
    scorer, _ = make_scorer(labels=("positive", "negative"))
    with pytest.raises(ModelContractError):
        await scorer.score(["good"])


def test_transient_classification() -> None:
    assert is_transient(InferenceServerException("x", status=UNAVAILABLE))
    assert is_transient(InferenceServerException("x", status="StatusCode.DEADLINE_EXCEEDED"))
    assert is_transient(InferenceServerException("x", status="StatusCode.INTERNAL"))
    assert not is_transient(InferenceServerException("x", status="StatusCode.INVALID_ARGUMENT"))
    assert not is_transient(InferenceServerException("client-side bug"))
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionRefusedError())
    assert not is_transient(ValueError())
