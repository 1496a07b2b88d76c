"""Measure a scorer's error rates and score likelihood ratios on held-out labelled reviews.

Why: the detector compares the model's labels (or scores) with a baseline, and how much
a rise of the true negative share shows in them depends on the model. The ``wilson``
test needs the hard label's sensitivity and false-positive rate; the ``llr`` test also
needs, per bin of ``p_negative``, how much likelier a truly negative review is to land
there than a truly positive one (``AlertConfig.scorer_ratios``). Both come from the
corpus test split — texts the model never trained on, labelled by the corpus, not by
the simulator's ratings — so the figures an evaluation reports are not tuned to the
ratings they are scored against.

Ratios use add-half smoothing per bin (a bin no positive review reached must not get an
infinite ratio from ~900 examples), and equal-width bins of ``p_negative``:

>>> cal = calibrate([0.9, 0.8, 0.3, 0.95, 0.1, 0.2, 0.6, 0.05], [1, 1, 1, 1, 0, 0, 0, 0], bins=2)
>>> cal.sensitivity, cal.false_positive_rate, cal.ratios
(0.75, 0.25, (0.4286, 2.3333))
>>> cal.preset()["scorer_ratios"]
'0.4286,2.3333'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecomstream.alerts.config import SCORE_BINS
from ecomstream.alerts.detector import score_bin


@dataclass(frozen=True, slots=True)
class Calibration:
    """A scorer's measured behaviour: hard-label rates and per-bin likelihood ratios."""

    reviews: int
    negatives: int
    sensitivity: float  # P(labelled negative | truly negative)
    false_positive_rate: float  # P(labelled negative | truly positive)
    ratios: tuple[float, ...]  # P(bin | negative) / P(bin | positive), equal-width bins
    negative_bins: tuple[int, ...]
    positive_bins: tuple[int, ...]

    def preset(self) -> dict[str, str]:
        """The AlertConfig fields this calibration sets (values as strings, like a preset)."""
        return {
            "scorer_sensitivity": f"{self.sensitivity:.4g}",
            "scorer_false_positive_rate": f"{self.false_positive_rate:.4g}",
            "scorer_ratios": ",".join(f"{r:.5g}" for r in self.ratios),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviews": self.reviews,
            "negatives": self.negatives,
            "sensitivity": self.sensitivity,
            "false_positive_rate": self.false_positive_rate,
            "ratios": list(self.ratios),
            "negative_bins": list(self.negative_bins),
            "positive_bins": list(self.positive_bins),
            "preset": self.preset(),
        }


def calibrate(
    p_negative: Sequence[float], negative: Sequence[int | bool], *, bins: int = SCORE_BINS
) -> Calibration:
    """Rates and ratios from the scores of reviews whose true label is ``negative`` (1/True).

    The hard label is ``p_negative > 0.5``-ish as the detector's bins see it (bin of
    ``p_negative`` in the upper half), which is the model's argmax for two labels.
    """
    if len(p_negative) != len(negative) or not p_negative:
        raise ValueError("need as many truth labels as scores, and at least one")
    if bins not in (2, 5, SCORE_BINS):
        raise ValueError(f"bins must be 2, 5 or {SCORE_BINS}")
    neg = [0] * bins
    pos = [0] * bins
    for p, truth in zip(p_negative, negative, strict=True):
        slot = score_bin(p) * bins // SCORE_BINS
        (neg if truth else pos)[slot] += 1
    n_neg, n_pos = sum(neg), sum(pos)
    if not n_neg or not n_pos:
        raise ValueError("need truly negative and truly positive reviews")
    half = bins // 2
    ratios = tuple(
        round(((a + 0.5) / (n_neg + 0.5 * bins)) / ((b + 0.5) / (n_pos + 0.5 * bins)), 4)
        for a, b in zip(neg, pos, strict=True)
    )
    return Calibration(
        reviews=n_neg + n_pos,
        negatives=n_neg,
        sensitivity=round(sum(neg[half:]) / n_neg, 4),
        false_positive_rate=round(sum(pos[half:]) / n_pos, 4),
        ratios=ratios,
        negative_bins=tuple(neg),
        positive_bins=tuple(pos),
    )


def calibrate_model(
    artifact_dir: Path | str, *, bins: int = SCORE_BINS, batch_size: int = 64
) -> Calibration:
    """Score the corpus test split (the model's own held-out split) with an exported model."""
    from ecomstream.alerts.modellabels import ModelLabeller
    from ecomstream.data.corpus import NEGATIVE, load_review_corpus, split_corpus
    from ecomstream.model.train import SPLIT_SEED

    split = split_corpus(load_review_corpus(), seed=SPLIT_SEED)
    labeller = ModelLabeller.load(artifact_dir, batch_size=batch_size)
    texts = [x.text for x in split.test]
    labeller.score(texts, desc="test split")
    return calibrate(
        [labeller.cache[t].p_negative for t in texts],
        [x.label == NEGATIVE for x in split.test],
        bins=bins,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ecomstream.alerts.calibration --model DIR``: print the calibration JSON."""
    import argparse

    import orjson

    parser = argparse.ArgumentParser(prog="python -m ecomstream.alerts.calibration")
    parser.add_argument("--model", type=Path, required=True, help="exported model folder")
    parser.add_argument("--bins", type=int, default=SCORE_BINS)
    args = parser.parse_args(argv)
    cal = calibrate_model(args.model, bins=args.bins)
    print(
        orjson.dumps(
            {"model": str(args.model), **cal.to_dict()}, option=orjson.OPT_INDENT_2
        ).decode()
    )


if __name__ == "__main__":
    main()
