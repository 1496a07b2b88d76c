"""The in-process ONNX scorer and the shared runtime, on the tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecomstream.inference.base import ScorerClosed, SentimentScore
from ecomstream.inference.onnx import OnnxScorer
from ecomstream.inference.runtime import ModelMeta, SentimentRuntime, labels_for, softmax
from ecomstream.testing.triton import TINY_MODEL_NAME, sample_review_texts


@pytest.fixture(scope="module")
def runtime(tiny_sentiment_artifact: Path) -> SentimentRuntime:
    return SentimentRuntime(tiny_sentiment_artifact)


async def test_scores_in_order_with_model_identity(tiny_sentiment_artifact: Path) -> None:
    texts = sample_review_texts(20)
    async with OnnxScorer(tiny_sentiment_artifact, max_batch_size=7) as scorer:
        scores = await scorer.score(texts)
    assert len(scores) == len(texts)
    assert all(isinstance(s, SentimentScore) for s in scores)
    assert {s.model_name for s in scores} == {TINY_MODEL_NAME}
    assert {s.model_version for s in scores} == {"seed0"}
    for s in scores:
        assert set(s.probabilities) == {"negative", "positive"}
        assert sum(s.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert s.label == max(s.probabilities, key=lambda k: s.probabilities[k])
    assert {s.label for s in scores} == {"negative", "positive"}  # the tiny model is not constant


async def test_batching_does_not_change_results(tiny_sentiment_artifact: Path) -> None:
    texts = sample_review_texts(30)
    scorer = OnnxScorer(tiny_sentiment_artifact, max_batch_size=64)
    together = await scorer.score(texts)
    alone = [(await scorer.score([t]))[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert a.label == b.label
        for label in a.probabilities:
            assert a.probabilities[label] == pytest.approx(b.probabilities[label], abs=1e-5)


async def test_micro_batcher_feeds_the_scorer(tiny_sentiment_artifact: Path) -> None:
    from ecomstream.inference.batcher import MicroBatcher

    scorer = OnnxScorer(tiny_sentiment_artifact)
    texts = sample_review_texts(20)
    async with MicroBatcher(scorer.score, max_batch_size=8, max_delay_ms=5) as batcher:
        via_batcher = await batcher.submit_many(texts)
    direct = await scorer.score(texts)
    assert [s.label for s in via_batcher] == [s.label for s in direct]
    for a, b in zip(via_batcher, direct, strict=True):
        assert a.probabilities["positive"] == pytest.approx(b.probabilities["positive"], abs=1e-5)
    assert batcher.batch_sizes == [8, 8, 8, 1]


async def test_a_bare_string_is_refused(tiny_sentiment_artifact: Path) -> None:
    with pytest.raises(TypeError):
        await OnnxScorer(tiny_sentiment_artifact).score("not a list")


async def test_empty_input_and_closed_scorer(tiny_sentiment_artifact: Path) -> None:
    scorer = OnnxScorer(tiny_sentiment_artifact)
    assert await scorer.score([]) == []
    assert scorer.healthy and await scorer.wait_ready(0.1)
    await scorer.close()
    assert not scorer.healthy
    with pytest.raises(ScorerClosed):
        await scorer.score(["x"])


def test_truncation_to_max_len_and_padding_to_longest(runtime: SentimentRuntime) -> None:
    feeds = runtime.encode(["好", "很好" * 500, ""])
    ids, mask = feeds["input_ids"], feeds["attention_mask"]
    assert ids.shape == (3, runtime.meta.max_len)
    assert mask.sum(axis=1).tolist() == [3, runtime.meta.max_len, 2]  # [CLS] .. [SEP]
    assert (ids[mask == 0] == runtime.pad_id).all()
    assert ids.dtype == mask.dtype == np.int64
    assert runtime.encode(["好", "好好"])["input_ids"].shape == (2, 4)


def test_softmax_and_label_rules() -> None:
    probabilities = softmax(np.array([[1.0, 3.0], [2.0, 2.0], [-5.0, -9.0]]))
    assert probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert labels_for(probabilities, ["negative", "positive"]) == [
        "positive",
        "negative",  # a tie goes to the first label
        "negative",
    ]


def test_meta_validation() -> None:
    good = {"name": "m", "version": "1", "labels": ["negative", "positive"], "max_len": 8}
    assert ModelMeta.from_dict(good).labels == ("negative", "positive")
    with pytest.raises(ValueError, match="lacks"):
        ModelMeta.from_dict({"name": "m"})
    with pytest.raises(ValueError, match="distinct"):
        ModelMeta.from_dict({**good, "labels": ["a", "a"]})
    with pytest.raises(ValueError, match="max_len"):
        ModelMeta.from_dict({**good, "max_len": 1})
