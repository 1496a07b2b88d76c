"""Exponential time decay in event time, by *forward decay* against a landmark.

A decayed score at time T is ``Σ wᵢ · 2^(−(T − tᵢ)/h)`` over the events ``(tᵢ, wᵢ)``
with ``tᵢ ≤ T``. Instead of decaying every stored score whenever time advances, we
store ``s = Σ wᵢ · 2^((tᵢ − L)/h)`` relative to a landmark ``L`` and read
``s · 2^(−(T − L)/h)``. Consequences that the rest of the package relies on:

* one event costs one multiply-add, whatever the number of keys;
* the stored value is a sum, so the result does not depend on arrival order: an
  out-of-order (late) event adds exactly what it would have added in order, which
  is *less* than a fresh event of the same weight — decay never inflates an old event;
* ratios of scores stored against the same landmark need no decay at all
  (``P(j | i) = s_ij / s_i`` is read without knowing T);
* when an event is far ahead of the landmark (``RESCALE_HALF_LIVES``), the map is
  rescaled to a new landmark so floats never overflow; scores that decay below
  ``floor`` are dropped at that moment.

>>> h = 3_600_000  # one hour
>>> s = forward_weight(2 * h, 0, h) + forward_weight(h, 0, h)   # in order or not: same sum
>>> decayed(s, 0, 2 * h, h)   # at T = 2h: 1 (fresh) + 0.5 (one hour old)
1.5
>>> scores = {"a": 4.0, "b": 1e-9}
>>> rescale(scores, 0.25, floor=1e-6); scores
{'a': 1.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import itemgetter
from typing import Final

# Rescale when an event is this many half-lives past the landmark (2^40 ≈ 1.1e12: far from
# float overflow, and a rescale is rare: once per 40 half-lives of a key's activity).
RESCALE_HALF_LIVES: Final = 40.0
DEFAULT_FLOOR: Final = 1e-9
_KEY: Final = itemgetter(0)
_SCORE: Final = itemgetter(1)


def forward_weight(ts: int, landmark: int, half_life_ms: int) -> float:
    """Weight of one unit event at ``ts`` stored against ``landmark``."""
    return 2.0 ** ((ts - landmark) / half_life_ms)


def decayed(stored: float, landmark: int, now: int, half_life_ms: int) -> float:
    """Value at ``now`` of a score stored against ``landmark``."""
    return stored * 2.0 ** ((landmark - now) / half_life_ms)


def needs_rescale(ts: int, landmark: int, half_life_ms: int) -> bool:
    return ts - landmark > RESCALE_HALF_LIVES * half_life_ms


def rescale(scores: dict[str, float], factor: float, floor: float = DEFAULT_FLOOR) -> None:
    """Multiply every score by ``factor`` in place and drop those that fall below ``floor``."""
    dead = []
    for key, value in scores.items():
        value *= factor
        if value < floor:
            dead.append(key)
        else:
            scores[key] = value
    for key in dead:
        del scores[key]


def by_score(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """``(key, score)`` pairs, highest score first, ties by key (ascending).

    The same order as ``sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))``, twice
    as fast (two sorts keyed by C getters; the second is stable, so ties keep key order).

    >>> by_score({"b": 1.0, "c": 2.0, "a": 1.0})
    [('c', 2.0), ('a', 1.0), ('b', 1.0)]
    """
    ranked = sorted(scores.items(), key=_KEY)
    ranked.sort(key=_SCORE, reverse=True)
    return ranked


def evict_smallest(scores: dict[str, float], keep: int) -> None:
    """Keep the ``keep`` largest scores (ties: the smaller key survives), in place."""
    if len(scores) <= keep:
        return
    for key, _ in by_score(scores)[keep:]:
        del scores[key]
