"""Quality incidents: an item's quality collapses at a known time (and may recover).

Why known times: the ground truth says exactly when each incident starts and
ends, so the sentiment-alert detector can be scored on delay and misses.
Random incidents go to popular, well-rated items in the middle of the run, so
that there is a positive baseline before and enough reviews after to detect.

>>> book = IncidentBook([Incident(3, "i0003", "home", 1_000, 2_000, 0.9, 0.1)])
>>> book.quality(3, 0.9, 999), book.quality(3, 0.9, 1_500), book.quality(3, 0.9, 2_000)
(0.9, 0.1, 0.9)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ecomstream.simulator.catalog import Catalog
from ecomstream.simulator.config import SimConfig, SimConfigError

MIN_QUALITY_FOR_RANDOM = 0.6
RANDOM_WINDOW = (0.35, 0.6)  # share of the run's span in which random incidents start


@dataclass(frozen=True, slots=True)
class Incident:
    item_index: int
    item_id: str
    category: str
    start_ms: int
    end_ms: int | None  # None: no recovery within the run
    quality_before: float
    quality_during: float

    def active(self, ts: int) -> bool:
        return self.start_ms <= ts and (self.end_ms is None or ts < self.end_ms)

    def as_truth(self) -> dict[str, object]:
        return {
            "item_id": self.item_id,
            "category": self.category,
            "start_ts": self.start_ms,
            "end_ts": self.end_ms,
            "quality_before": self.quality_before,
            "quality_during": self.quality_during,
        }


class IncidentBook:
    """Fast "what is this item's quality at ts" for the few items that have incidents."""

    def __init__(self, incidents: Sequence[Incident]) -> None:
        self.incidents = tuple(sorted(incidents, key=lambda i: (i.start_ms, i.item_id)))
        self._by_item: dict[int, list[Incident]] = {}
        for incident in self.incidents:
            self._by_item.setdefault(incident.item_index, []).append(incident)

    def quality(self, item_index: int, base: float, ts: int) -> float:
        for incident in self._by_item.get(item_index, ()):
            if incident.active(ts):
                return incident.quality_during
        return base

    def affected(self, item_index: int, ts: int) -> bool:
        return any(i.active(ts) for i in self._by_item.get(item_index, ()))


def resolve_incidents(
    config: SimConfig,
    catalog: Catalog,
    expected_share: Sequence[float],
    span_s: float,
    rng: random.Random,
) -> list[Incident]:
    """Explicit incidents from the config, then ``random_incidents`` on popular items."""
    ids = {item.item_id: item.index for item in catalog.items}
    duration_ms = (
        None if config.incident_duration_s is None else round(config.incident_duration_s * 1000)
    )

    def make(index: int, offset_s: float) -> Incident:
        item = catalog.items[index]
        start = config.start_ms + round(offset_s * 1000)
        return Incident(
            item_index=index,
            item_id=item.item_id,
            category=item.category,
            start_ms=start,
            end_ms=None if duration_ms is None else start + duration_ms,
            quality_before=item.quality,
            quality_during=config.incident_quality,
        )

    chosen: list[Incident] = []
    for spec in config.incidents:
        if spec.item_id not in ids:
            raise SimConfigError(f"incident item {spec.item_id!r} is not in the catalog")
        if config.duration_s is not None and spec.offset_s >= config.duration_s:
            raise SimConfigError(f"incident at +{spec.offset_s:g}s is after the end of the run")
        chosen.append(make(ids[spec.item_id], spec.offset_s))
    if config.random_incidents:
        taken = {incident.item_index for incident in chosen}
        ranked = sorted(range(len(catalog.items)), key=lambda i: -expected_share[i])
        good = [
            i
            for i in ranked
            if i not in taken and catalog.items[i].quality >= MIN_QUALITY_FOR_RANDOM
        ]
        pool = good[: max(10, 3 * config.random_incidents)]
        if len(pool) < config.random_incidents:
            raise SimConfigError(
                f"only {len(pool)} items qualify for a random incident, "
                f"{config.random_incidents} requested"
            )
        lo, hi = RANDOM_WINDOW
        for index in rng.sample(pool, config.random_incidents):
            chosen.append(make(index, span_s * rng.uniform(lo, hi)))
    return chosen
