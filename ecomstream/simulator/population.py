"""Shoppers: a latent taste over categories, a price sensitivity, an activity level, a memory.

Why latent and persistent: a user keeps coming back to the same few categories
and to items seen or carted before, so the next purchase is predictable from
the history the stream shows, which is what the recommender is evaluated on.

>>> import random
>>> from ecomstream.simulator.catalog import build_catalog
>>> catalog = build_catalog(random.Random(0), items=40, categories=4, zipf_exponent=1.1)
>>> users = build_population(random.Random(1), catalog, users=3, concentration=0.3)
>>> [u.user_id for u in users]
['u00000', 'u00001', 'u00002']
>>> abs(sum(users[0].taste) - 1.0) < 1e-9
True
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from ecomstream.simulator.catalog import Catalog
from ecomstream.simulator.rng import cumulative, dirichlet


@dataclass(slots=True)
class User:
    index: int
    user_id: str
    taste: tuple[float, ...]  # probability per category, sums to 1
    taste_cum: tuple[float, ...]
    price_sensitivity: float  # elasticity: 0 ignores price, 2 avoids anything above median
    activity: float  # multiplier on the mean session rate
    seen: deque[int] = field(default_factory=lambda: deque(maxlen=20))  # recent item indices
    saved: list[int] = field(default_factory=list)  # abandoned cart / wishlist items
    bought: set[int] = field(default_factory=set)

    def top_categories(self, categories: tuple[str, ...], k: int = 3) -> list[str]:
        order = sorted(range(len(self.taste)), key=lambda c: -self.taste[c])
        return [categories[c] for c in order[:k] if self.taste[c] > 0.0]


def build_population(
    rng: random.Random, catalog: Catalog, *, users: int, concentration: float, memory: int = 20
) -> list[User]:
    """Tastes are Dirichlet draws centred on the shop-wide category weights."""
    n_cat = len(catalog.categories)
    alphas = [max(concentration * n_cat * w, 1e-3) for w in catalog.category_weight]
    width = max(5, len(str(users - 1)))
    population: list[User] = []
    for index in range(users):
        taste = dirichlet(rng, alphas)
        population.append(
            User(
                index=index,
                user_id=f"u{index:0{width}d}",
                taste=tuple(taste),
                taste_cum=tuple(cumulative(taste)),
                price_sensitivity=round(0.8 * math.exp(rng.gauss(0.0, 0.5)), 4),
                # Mean 1 (log-normal with sigma 0.7): a few heavy users, many light ones.
                activity=math.exp(rng.gauss(-0.245, 0.7)),
                seen=deque(maxlen=memory),
            )
        )
    return population
