"""Ranking metrics for next-purchase evaluation, and a paired test between two rankers.

One relevant item per list (the item bought next): hit rate at K is the share of
lists that hold it in their first K, NDCG at K the mean of ``1 / log2(rank + 1)``
(rank from 1; 0 when absent).

Two rankers scored on the *same* purchases are not two independent samples: on most
lines they place the bought item identically, and a difference of a few thousandths in
mean NDCG is noise or a consistent effect depending on how the lines split. So
:func:`compare_paired` compares line by line — how often the candidate ranks the bought
item higher than the reference and how often lower (an exact two-sided sign test on
those counts), a percentile bootstrap interval of the mean NDCG difference, and the
hits each one has that the other misses.

>>> ndcg_at([("i1", "i2", "i3")], ["i2"], 10), hit_rate_at([("i1",)], ["i2"], 10)
(0.6309, 0.0)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


def gain_at(shown: Sequence[str], target: str, k: int) -> float:
    """``1 / log2(rank + 1)`` of ``target`` in the first ``k`` of ``shown``; 0 if absent.

    >>> gain_at(("a", "b"), "a", 10), round(gain_at(("a", "b"), "b", 10), 4), gain_at("ab", "b", 1)
    (1.0, 0.6309, 0.0)
    """
    for position, item in enumerate(shown[:k]):
        if item == target:
            return 1.0 / math.log2(position + 2)
    return 0.0


def hit_rate_at(lists: Sequence[Sequence[str]], targets: Sequence[str], k: int) -> float:
    if not targets:
        return 0.0
    hits = sum(1 for shown, target in zip(lists, targets, strict=True) if target in shown[:k])
    return round(hits / len(targets), 4)


def ndcg_at(lists: Sequence[Sequence[str]], targets: Sequence[str], k: int) -> float:
    if not targets:
        return 0.0
    total = sum(gain_at(shown, target, k) for shown, target in zip(lists, targets, strict=True))
    return round(total / len(targets), 4)


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test: how likely a split at least this uneven is by chance.

    Ties are left out (they say nothing about which side is better).

    >>> sign_test_p(13, 0) < 0.001, sign_test_p(5, 5), round(sign_test_p(8, 2), 3)
    (True, 1.0, 0.109)
    """
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    return min(1.0, 2.0 * tail / 2**n)


def bootstrap_mean_ci(
    values: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded: the same input gives the same one).

    >>> bootstrap_mean_ci([1.0] * 50)
    (1.0, 1.0)
    >>> low, high = bootstrap_mean_ci([0.0] * 90 + [1.0] * 10); low < 0.1 < high
    True
    """
    if not values:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    return means[int(tail * (resamples - 1))], means[math.ceil((1.0 - tail) * (resamples - 1))]


@dataclass(frozen=True, slots=True)
class PairedComparison:
    """How a candidate ranker compares with a reference on the same purchase lines."""

    lines: int
    higher: int  # lines where the candidate ranks the bought item higher (or only it shows it)
    lower: int
    hits_gained: int  # in the candidate's first K, not in the reference's
    hits_lost: int
    ndcg_diff: float  # mean of candidate gain − reference gain
    ndcg_diff_low: float  # bootstrap interval of that mean
    ndcg_diff_high: float
    sign_p: float  # two-sided sign test on higher vs lower

    @property
    def beats(self) -> bool:
        """Better on NDCG beyond the bootstrap interval, and no hit rate given up."""
        return self.ndcg_diff_low > 0.0 and self.hits_gained >= self.hits_lost

    def summary(self, k: int) -> str:
        return (
            f"bought item ranked higher in {self.higher} of {self.lines} lines, lower in "
            f"{self.lower} (sign test p={self.sign_p:.2g}); NDCG@{k} {self.ndcg_diff:+.4f} "
            f"(95% CI {self.ndcg_diff_low:+.4f} … {self.ndcg_diff_high:+.4f}); HR@{k} hits "
            f"gained {self.hits_gained}, lost {self.hits_lost}"
        )


def compare_paired(
    candidate: Sequence[Sequence[str]],
    reference: Sequence[Sequence[str]],
    targets: Sequence[str],
    k: int,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Line-by-line comparison of two rankers' lists for the same targets (module docstring).

    >>> c = compare_paired([("a", "x"), ("b",), ("z",)], [("x", "a"), ("b",), ("c",)],
    ...                    ["a", "b", "c"], k=10)
    >>> c.higher, c.lower, c.hits_gained, c.hits_lost, round(c.ndcg_diff, 4)
    (1, 1, 0, 1, -0.2103)
    >>> c.beats
    False
    """
    diffs = [
        gain_at(mine, target, k) - gain_at(theirs, target, k)
        for mine, theirs, target in zip(candidate, reference, targets, strict=True)
    ]
    gained = lost = 0
    for mine, theirs, target in zip(candidate, reference, targets, strict=True):
        in_mine, in_theirs = target in mine[:k], target in theirs[:k]
        gained += in_mine and not in_theirs
        lost += in_theirs and not in_mine
    higher = sum(1 for d in diffs if d > 0.0)
    lower = sum(1 for d in diffs if d < 0.0)
    low, high = bootstrap_mean_ci(diffs, resamples=resamples, seed=seed)
    return PairedComparison(
        lines=len(diffs),
        higher=higher,
        lower=lower,
        hits_gained=gained,
        hits_lost=lost,
        ndcg_diff=sum(diffs) / len(diffs) if diffs else 0.0,
        ndcg_diff_low=low,
        ndcg_diff_high=high,
        sign_p=sign_test_p(higher, lower),
    )
