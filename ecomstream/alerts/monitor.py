"""All items and categories of one stream in memory: the reference wiring of the detector.

Why it exists: replays and evaluation need the exact sequence of calls the Faust
agent makes — per review: bring the category to stream time, observe the item with
the category's prior, then count the review in the category (kept out of the
category baseline while the item is elevated or firing); per bucket of stream
time: advance the items that have an open episode so they can resolve even when
their reviews stop. The agent does the same with tables instead of dicts.

``roundtrip=True`` serialises every state after each call and reads it back, as a
changelog-backed table would; alerts must not change (the unit tests check it).

>>> from ecomstream.alerts.records import ScoredReview
>>> monitor = SentimentMonitor(AlertConfig(min_reviews=4, min_negative=4))
>>> t0 = 1_767_225_600_000
>>> alerts = []
>>> for i in range(6):
...     review = ScoredReview(f"r{i}", "i1", "home", t0 + i * 60_000, True, 0.95)
...     alerts += monitor.observe(review).alerts
>>> [(a.state, a.severity) for a in alerts], sorted(monitor.open)
([('firing', 'warning')], ['i1'])
>>> [a.state for a in monitor.tick(t0 + 3 * 3_600_000)]  # hours without reviews
['resolved']
"""

from __future__ import annotations

from collections.abc import Callable

from ecomstream.alerts.baseline import (
    CategoryState,
    advance_category,
    category_prior,
    observe_category,
)
from ecomstream.alerts.config import DEFAULT_CONFIG, AlertConfig
from ecomstream.alerts.detector import FIRING, ItemState, Observation, SentimentDetector
from ecomstream.alerts.records import AlertRecord, ScoredReview
from ecomstream.alerts.windows import bucket_of

Probe = Callable[[ItemState, SentimentDetector], None]


class SentimentMonitor:
    def __init__(
        self,
        config: AlertConfig = DEFAULT_CONFIG,
        *,
        roundtrip: bool = False,
        probe: Probe | None = None,
    ) -> None:
        self.config = config
        self.detector = SentimentDetector(config)
        self.items: dict[str, ItemState] = {}
        self.categories: dict[str, CategoryState] = {}
        self.open: set[str] = set()  # items with an episode firing
        self.clock = 0  # the stream's max event time
        self.reviews = 0
        self.too_late = 0
        self.roundtrip = roundtrip
        self.probe = probe  # called after every change of an item's state (timelines)

    def _item(self, review: ScoredReview) -> ItemState:
        state = self.items.get(review.item_id)
        if state is None:
            state = self.detector.new_state(review.item_id, review.category)
        elif self.roundtrip:
            state = self.detector.load(state.to_bytes())
        return state

    def _category(self, name: str) -> CategoryState:
        state = self.categories.get(name)
        if state is None:
            state = CategoryState(name, self.config)
        elif self.roundtrip:
            state = CategoryState.from_bytes(state.to_bytes(), self.config)
        return state

    def observe(self, review: ScoredReview) -> Observation:
        """One review: tick the open items if stream time entered a new bucket, then count it.

        Alerts of the tick come first in the returned observation.
        """
        ticked: list[AlertRecord] = []
        if bucket_of(review.ts, self.config.bucket_ms) > bucket_of(
            self.clock, self.config.bucket_ms
        ):
            ticked = self.tick(review.ts)
        self.clock = max(self.clock, review.ts)
        self.reviews += 1
        item = self._item(review)
        category = self._category(review.category)
        advance_category(self.config, category, self.clock)
        result = self.detector.observe(
            item, review, prior=category_prior(self.config, category), now=self.clock
        )
        observe_category(
            self.config,
            category,
            review,
            now=self.clock,
            in_baseline=not self.detector.elevated(item),
        )
        self.categories[review.category] = category
        self.items[review.item_id] = item
        if result.too_late:
            self.too_late += 1
        self._track(item)
        result.alerts[:0] = ticked
        return result

    def tick(self, now: int) -> list[AlertRecord]:
        """Advance the items with an open episode to stream time ``now`` (sorted: deterministic)."""
        self.clock = max(self.clock, now)
        alerts: list[AlertRecord] = []
        for item_id in sorted(self.open):
            item = self.items[item_id]
            if self.roundtrip:
                item = self.detector.load(item.to_bytes())
            category = self.categories.get(item.category)
            if category is not None:
                advance_category(self.config, category, self.clock)
            prior = category_prior(self.config, category) if category is not None else None
            alerts += self.detector.advance(item, self.clock, prior=prior)
            self.items[item_id] = item
            self._track(item)
        return alerts

    def _track(self, item: ItemState) -> None:
        if item.phase == FIRING:
            self.open.add(item.item_id)
        else:
            self.open.discard(item.item_id)
        if self.probe is not None:
            self.probe(item, self.detector)
