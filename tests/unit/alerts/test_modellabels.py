from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ecomstream.alerts.evaluate import RunInput, evaluate_runs
from ecomstream.alerts.modellabels import (
    Agreement,
    ModelLabeller,
    TextScore,
    missing_texts,
    relabelled,
    text_scores,
)
from ecomstream.inference.runtime import Prediction

from .helpers import MIN, T0, review

POS, NEG = "真不错，推荐", "太差了，退货"


class WordModel:
    """A stand-in model: negative when the text contains 差; records every batch it gets."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict(self, texts: Sequence[str]) -> Prediction:
        self.calls.append(list(texts))
        p_neg = np.array([0.9 if "差" in t else 0.2 for t in texts], dtype=np.float32)
        probabilities = np.stack([1 - p_neg, p_neg], axis=1)  # label order: positive, negative
        labels = ["negative" if p > 0.5 else "positive" for p in p_neg]
        return Prediction(probabilities, labels)


def _labeller(model: WordModel, batch_size: int = 2) -> ModelLabeller:
    return ModelLabeller(
        model,
        ("positive", "negative"),
        name="model word v0",
        info={"name": "word", "version": "0"},
        batch_size=batch_size,
        progress=False,
    )


def test_text_scores_read_the_negative_column_whatever_the_label_order() -> None:
    got = text_scores(np.array([[0.3, 0.7]]), ["negative"], ["positive", "negative"])
    assert got == [TextScore(True, pytest.approx(0.7))]
    with pytest.raises(ValueError, match="no 'negative' label"):
        text_scores(np.array([[0.3, 0.7]]), ["bad"], ["good", "bad"])


def test_missing_texts_are_distinct_uncached_and_shortest_first() -> None:
    cache = {"a": TextScore(False, 0.1)}
    assert missing_texts(["ccc", "a", "bb", "ccc", "d"], cache) == ["d", "bb", "ccc"]


def test_relabelled_replaces_only_the_label() -> None:
    r = review(1, T0, negative=False, rating=5, text=NEG)
    got = relabelled(r, TextScore(True, 0.8))
    assert (got.negative, got.p_negative) == (True, 0.8)
    assert (got.review_id, got.ts, got.rating, got.excerpt) == (r.review_id, T0, 5, NEG)


def test_agreement_counts_low_and_high_ratings_and_adds_up() -> None:
    a = Agreement.of([(1, True), (2, True), (2, False), (4, False), (5, True), (3, True)])
    assert a.accuracy == pytest.approx(3 / 5)
    d = (a + a).to_dict()
    assert (d["low"], d["high"], d["mid"], d["rated"]) == (6, 4, 2, 10)
    assert d["negative_given_low"] == pytest.approx(2 / 3)
    assert d["negative_given_high"] == pytest.approx(0.5)
    assert d["negative_given_3"] == 1.0
    assert Agreement().accuracy is None


def test_labeller_scores_each_distinct_text_once_across_calls() -> None:
    model = WordModel()
    labeller = _labeller(model)
    reviews = [review(i, T0 + i * MIN, negative=False, text=(NEG, POS)[i % 2]) for i in range(10)]
    got = labeller.relabel(reviews)
    assert [r.negative for r in got] == [i % 2 == 0 for i in range(10)]
    assert got[0].p_negative == pytest.approx(0.9)
    assert sorted(t for batch in model.calls for t in batch) == sorted([NEG, POS])
    labeller.relabel([*reviews, review(11, T0, negative=True, text="好")])
    assert model.calls[-1] == ["好"] and len(model.calls) == 2


def test_labeller_refuses_reviews_without_text() -> None:
    with pytest.raises(ValueError, match="text"):
        _labeller(WordModel()).relabel([review(1, T0, negative=True)])


def test_model_labels_drive_the_evaluation_and_the_report_says_so(tmp_path: Path) -> None:
    """Ratings say nothing is wrong with i1; the texts (hence the model) say it collapsed."""
    reviews = [
        review(i, T0 + i * MIN, negative=False, rating=5, text=NEG if i >= 90 else POS)
        for i in range(180)
    ]
    truth = {
        "start_ts": T0,
        "end_ts": T0 + 180 * MIN,
        "incidents": [{"item_id": "i1", "category": "home", "start_ts": T0 + 90 * MIN}],
    }
    runs = [RunInput("r", reviews, truth)]
    plain = evaluate_runs(runs, tmp_path / "rating", plot=False)
    assert plain["summary"]["detected"] == 0
    assert plain["labels"]["model"] is None
    report = evaluate_runs(runs, tmp_path / "model", plot=False, labeller=_labeller(WordModel()))
    assert report["summary"]["detected"] == 1
    assert report["label_source"] == ["model word v0"]
    agreement = report["labels"]["agreement_with_ratings"]
    assert agreement["accuracy"] == pytest.approx(0.5) and agreement["rated"] == 180
    markdown = (tmp_path / "model" / "alerts-report.md").read_text()
    assert "model word v0" in markdown and "`word` version 0" in markdown
    assert "accuracy 0.500 over 180 reviews" in markdown


def test_labeller_loads_an_exported_artifact(tiny_sentiment_artifact: Path) -> None:
    labeller = ModelLabeller.load(tiny_sentiment_artifact, progress=False)
    reviews = [review(i, T0, negative=False, text=t) for i, t in enumerate([POS, NEG, POS])]
    got = labeller.relabel(reviews)
    assert len(labeller.cache) == 2 and got[0] == relabelled(reviews[0], labeller.cache[POS])
    assert labeller.info["artifact"] == str(tiny_sentiment_artifact)
    assert labeller.name.startswith("model ")
