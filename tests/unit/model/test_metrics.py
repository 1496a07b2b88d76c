from __future__ import annotations

import numpy as np
import pytest

from ecomstream.model.metrics import (
    accuracy,
    by_length,
    confusion_matrix,
    macro_f1,
    reliability,
    summarize,
)


def test_confusion_and_accuracy() -> None:
    y, p = [0, 0, 0, 1, 1], [0, 1, 0, 1, 0]
    assert confusion_matrix(y, p).tolist() == [[2, 1], [1, 1]]
    assert accuracy(y, p) == pytest.approx(0.6)


def test_macro_f1_known_values() -> None:
    # class 0: P=2/3 R=2/3 F1=2/3; class 1: P=1/2 R=1/2 F1=1/2
    assert macro_f1([0, 0, 0, 1, 1], [0, 1, 0, 1, 0]) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert macro_f1([0, 1], [0, 1]) == 1.0
    # a class never predicted scores 0, not NaN
    assert macro_f1([0, 1, 1, 1], [1, 1, 1, 1]) == pytest.approx((0 + 2 * 3 / (2 * 3 + 1)) / 2)


def test_ece_known_values() -> None:
    # all confident 0.9, half right: |0.5 - 0.9| = 0.4
    probs = np.array([[0.1, 0.9]] * 4)
    assert reliability(probs, [1, 1, 0, 0]).ece == pytest.approx(0.4)
    # two bins: conf 0.6 (1 of 2 right: |0.5-0.6|=0.1) and conf 1.0 (right: 0), equal share
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [1.0, 0.0], [0.0, 1.0]])
    rel = reliability(probs, [0, 0, 0, 1], n_bins=10)
    assert rel.ece == pytest.approx(0.5 * 0.1)
    assert rel.counts.sum() == 4


def test_ece_zero_when_calibrated() -> None:
    probs = np.array([[0.25, 0.75]] * 4)
    assert reliability(probs, [1, 1, 1, 0]).ece == pytest.approx(0.0)


def test_by_length_and_summary() -> None:
    texts = ["短", "x" * 30, "y" * 300]
    res = by_length(texts, [0, 1, 1], [0, 0, 1])
    assert res["1-20"] == {"n": 1, "accuracy": 1.0}
    assert res["21-50"]["accuracy"] == 0.0
    assert res[">200"]["n"] == 1
    assert res["51-100"]["n"] == 0
    s = summarize(texts, [0, 1, 1], np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]))
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["confusion_matrix"] == [[1, 0], [1, 1]]
    assert {"macro_f1", "ece", "nll", "brier", "reliability", "by_length"} <= set(s)
