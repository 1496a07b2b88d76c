"""Seeded random sub-streams and the few sampling helpers the model needs.

Why sub-streams: the catalog, the population and the incidents each draw from
their own ``random.Random`` derived from (seed, name), so adding an incident
or more users never reshuffles the catalog. Nothing here touches the global
``random`` state.

>>> substream(7, "catalog").random() == substream(7, "catalog").random()
True
>>> pick(random.Random(1), ["a", "b", "c"], cumulative([0.0, 1.0, 0.0]))
'b'
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import TypeVar

T = TypeVar("T")


def substream(seed: int, name: str) -> random.Random:
    """An independent generator for one part of the model (str seeds hash with SHA-512)."""
    return random.Random(f"ecomstream-sim:{seed}:{name}")


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def pick(rng: random.Random, population: Sequence[T], cum_weights: Sequence[float]) -> T:
    """``rng.choices(..., cum_weights=...)[0]`` without building a list per call."""
    x = rng.random() * cum_weights[-1]
    return population[min(bisect_right(cum_weights, x), len(population) - 1)]


def pick_index(rng: random.Random, cum_weights: Sequence[float]) -> int:
    x = rng.random() * cum_weights[-1]
    return min(bisect_right(cum_weights, x), len(cum_weights) - 1)


def dirichlet(rng: random.Random, alphas: Sequence[float]) -> list[float]:
    draws = [rng.gammavariate(a, 1.0) for a in alphas]
    total = sum(draws)
    if total <= 0.0:  # every gamma underflowed (tiny alphas): fall back to one category
        draws = [0.0] * len(alphas)
        draws[rng.randrange(len(alphas))] = 1.0
        total = 1.0
    return [d / total for d in draws]


def lognormal_ms(
    rng: random.Random, median_s: float, sigma: float, lo_s: float, hi_s: float
) -> int:
    """A log-normal duration in whole milliseconds (at least 1), clipped to [lo_s, hi_s]."""
    seconds = median_s * math.exp(sigma * rng.gauss(0.0, 1.0))
    return max(1, round(min(max(seconds, lo_s), hi_s) * 1000))
