"""The shop's catalog: items in categories, with a price, a hidden quality and a popularity.

Why a "style" coordinate: items that are close in style within a category are
what a user browses together in one session, so co-visitation carries signal a
recommender can learn. Quality is hidden from the stream; it only shows
through cart decisions and review ratings.

>>> import random
>>> catalog = build_catalog(random.Random(0), items=20, categories=4, zipf_exponent=1.1)
>>> catalog.categories
('books', 'electronics', 'clothing', 'home')
>>> [len(ids) for ids in catalog.by_category]
[5, 5, 5, 5]
>>> catalog.items[3].item_id, catalog.items[3].category
('i0003', 'home')
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ecomstream.simulator.rng import cumulative

# (name, median price in CNY): the first N are used; more are numbered.
CATEGORY_PRICES: tuple[tuple[str, float], ...] = (
    ("books", 45.0),
    ("electronics", 899.0),
    ("clothing", 159.0),
    ("home", 129.0),
    ("beauty", 189.0),
    ("sports", 239.0),
    ("toys", 99.0),
    ("grocery", 39.0),
    ("phones", 2499.0),
    ("shoes", 329.0),
    ("baby", 119.0),
    ("kitchen", 149.0),
    ("pets", 79.0),
    ("computers", 4999.0),
    ("jewelry", 699.0),
    ("garden", 89.0),
)
NEIGHBOURS_EACH_SIDE = 6


@dataclass(frozen=True, slots=True)
class Item:
    index: int
    item_id: str
    category: str
    category_index: int
    price: float
    quality: float  # in [0, 1]: drives cart decisions and review ratings
    popularity: float  # Zipf weight within the category
    style: float  # position in [0, 1): neighbours in style are browsed together


@dataclass(frozen=True, slots=True)
class Catalog:
    categories: tuple[str, ...]
    median_price: tuple[float, ...]  # per category
    category_weight: tuple[float, ...]  # shop-wide share of attention per category
    items: tuple[Item, ...]
    by_category: tuple[tuple[int, ...], ...]  # item indices per category
    by_category_cum: tuple[tuple[float, ...], ...]  # cumulative popularity, same order
    neighbours: tuple[tuple[int, ...], ...]  # per item: related items in its category
    neighbours_cum: tuple[tuple[float, ...], ...]

    def item_id(self, index: int) -> str:
        return self.items[index].item_id

    def index_of(self, item_id: str) -> int:
        """Ids are ``i`` + the zero-padded index, so no lookup table is needed."""
        index = int(item_id[1:]) if item_id[1:].isdigit() else -1
        if not 0 <= index < len(self.items) or self.items[index].item_id != item_id:
            raise KeyError(item_id)
        return index


def category_names(n: int) -> list[tuple[str, float]]:
    named = list(CATEGORY_PRICES[:n])
    for extra in range(len(named), n):
        named.append((f"category{extra:02d}", 100.0))
    return named


def _id_width(n: int, minimum: int) -> int:
    return max(minimum, len(str(n - 1)))


def build_catalog(
    rng: random.Random, *, items: int, categories: int, zipf_exponent: float
) -> Catalog:
    """Items round-robin over categories; prices log-normal around the category median."""
    named = category_names(categories)
    width = _id_width(items, 4)
    # Shop-wide category attention: mildly skewed, shuffled so "books" is not always first.
    cat_weight = [1.0 / (rank + 1) ** 0.5 for rank in range(categories)]
    rng.shuffle(cat_weight)
    total = sum(cat_weight)
    cat_weight = [w / total for w in cat_weight]

    members: list[list[int]] = [[] for _ in range(categories)]
    for index in range(items):
        members[index % categories].append(index)
    built: list[Item | None] = [None] * items
    for c, indices in enumerate(members):
        name, median = named[c]
        ranks = list(range(1, len(indices) + 1))
        rng.shuffle(ranks)
        for index, rank in zip(indices, ranks, strict=True):
            price = round(median * math.exp(rng.gauss(0.0, 0.6)), 2)
            built[index] = Item(
                index=index,
                item_id=f"i{index:0{width}d}",
                category=name,
                category_index=c,
                price=max(price, 0.5),
                quality=round(rng.betavariate(5.0, 2.0), 4),
                popularity=1.0 / rank**zipf_exponent,
                style=rng.random(),
            )
    item_list = tuple(it for it in built if it is not None)
    by_cum = tuple(tuple(cumulative([item_list[i].popularity for i in ids])) for ids in members)
    neighbours, neighbours_cum = _neighbours(item_list, members)
    return Catalog(
        categories=tuple(name for name, _ in named),
        median_price=tuple(median for _, median in named),
        category_weight=tuple(cat_weight),
        items=item_list,
        by_category=tuple(tuple(ids) for ids in members),
        by_category_cum=by_cum,
        neighbours=neighbours,
        neighbours_cum=neighbours_cum,
    )


def _neighbours(
    items: tuple[Item, ...], members: list[list[int]]
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[float, ...], ...]]:
    """Per item: the nearest items by style in its category, weighted by closeness × popularity."""
    near: list[tuple[int, ...]] = [()] * len(items)
    near_cum: list[tuple[float, ...]] = [()] * len(items)
    for ids in members:
        ordered = sorted(ids, key=lambda i: items[i].style)
        for pos, index in enumerate(ordered):
            lo, hi = max(0, pos - NEIGHBOURS_EACH_SIDE), pos + NEIGHBOURS_EACH_SIDE + 1
            chosen = [j for j in ordered[lo:hi] if j != index]
            if not chosen:
                chosen = [index]
            weights = [
                items[j].popularity ** 0.5 / (0.02 + abs(items[j].style - items[index].style))
                for j in chosen
            ]
            near[index] = tuple(chosen)
            near_cum[index] = tuple(cumulative(weights))
    return tuple(near), tuple(near_cum)
