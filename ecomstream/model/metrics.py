"""Classification metrics in plain numpy: accuracy, macro-F1, confusion, calibration.

Why not sklearn.metrics: these few functions are the contract the report is
built on; writing them out keeps their definitions visible (ECE binning in
particular differs between libraries) and makes them testable on hand-made
inputs without the ``model`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Character-length buckets (upper bounds, inclusive). Reviews run from a few
# characters to thousands; max_len truncation bites in the last buckets.
LENGTH_EDGES: tuple[int, ...] = (20, 50, 100, 200)


def accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Fraction of equal labels.

    >>> accuracy([0, 1, 1], [0, 1, 0])
    0.6666666666666666
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if len(t) else 0.0


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_labels: int = 2
) -> np.ndarray:
    """Counts ``[true, predicted]``.

    >>> confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1]).tolist()
    [[1, 1], [0, 2]]
    """
    m = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def macro_f1(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_labels: int = 2
) -> float:
    """Unweighted mean of per-class F1; a class never predicted nor present scores 0.

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)
    0.7333
    """
    m = confusion_matrix(y_true, y_pred, n_labels)
    scores = []
    for k in range(n_labels):
        tp = m[k, k]
        denom = 2 * tp + (m[:, k].sum() - tp) + (m[k, :].sum() - tp)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


@dataclass(frozen=True)
class Reliability:
    """Equal-width confidence bins: what a reliability diagram plots."""

    edges: np.ndarray  # n_bins + 1
    confidence: np.ndarray  # mean confidence per bin (nan when empty)
    accuracy: np.ndarray  # accuracy per bin (nan when empty)
    counts: np.ndarray
    ece: float


def reliability(
    probs: np.ndarray, y_true: Sequence[int] | np.ndarray, n_bins: int = 15
) -> Reliability:
    """Bin by the top-class probability; ECE = sum over bins of |acc - conf| * share.

    >>> reliability(np.array([[0.1, 0.9], [0.1, 0.9]]), [1, 0], n_bins=10).ece
    0.4
    """
    y = np.asarray(y_true)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin i holds (edges[i], edges[i+1]]; confidence 0 falls in bin 0
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / counts
        mean_acc = np.bincount(index, weights=correct, minlength=n_bins) / counts
    share = counts / max(1, len(y))
    ece = float(np.nansum(np.abs(mean_acc - mean_conf) * share))
    return Reliability(edges, mean_conf, mean_acc, counts, round(ece, 12))


def length_bucket(n_chars: int, edges: Sequence[int] = LENGTH_EDGES) -> str:
    """Bucket label for a text length.

    >>> [length_bucket(n) for n in (5, 20, 21, 250)]
    ['1-20', '1-20', '21-50', '>200']
    """
    lower = 1
    for upper in edges:
        if n_chars <= upper:
            return f"{lower}-{upper}"
        lower = upper + 1
    return f">{edges[-1]}"


def bucket_names(edges: Sequence[int] = LENGTH_EDGES) -> list[str]:
    names, lower = [], 1
    for upper in edges:
        names.append(f"{lower}-{upper}")
        lower = upper + 1
    return [*names, f">{edges[-1]}"]


def by_length(
    texts: Sequence[str], y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> dict[str, dict[str, float | int]]:
    """Accuracy per character-length bucket (every bucket listed, empty ones with n=0)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    buckets = np.array([length_bucket(len(s)) for s in texts])
    out: dict[str, dict[str, float | int]] = {}
    for name in bucket_names():
        sel = buckets == name
        out[name] = {
            "n": int(sel.sum()),
            "accuracy": accuracy(t[sel], p[sel]) if sel.any() else 0.0,
        }
    return out


def summarize(
    texts: Sequence[str], y_true: Sequence[int] | np.ndarray, probs: np.ndarray, n_bins: int = 15
) -> dict[str, Any]:
    """Every reported metric for one classifier's probabilities."""
    y = np.asarray(y_true)
    pred = probs.argmax(axis=1)
    rel = reliability(probs, y, n_bins)
    nll = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    return {
        "n": len(y),
        "accuracy": accuracy(y, pred),
        "macro_f1": macro_f1(y, pred, probs.shape[1]),
        "confusion_matrix": confusion_matrix(y, pred, probs.shape[1]).tolist(),
        "ece": rel.ece,
        "nll": nll,
        "brier": float(((probs - np.eye(probs.shape[1])[y]) ** 2).sum(axis=1).mean()),
        "by_length": by_length(texts, y, pred),
        "reliability": {
            "edges": rel.edges.tolist(),
            "confidence": [None if np.isnan(v) else float(v) for v in rel.confidence],
            "accuracy": [None if np.isnan(v) else float(v) for v in rel.accuracy],
            "counts": rel.counts.tolist(),
        },
    }
