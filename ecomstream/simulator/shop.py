"""The synthetic shop: catalog + population + behaviour + incidents, merged in event time.

Why a heap of lazy timelines: each user's events are already in time order, so
a k-way merge yields the whole shop in time order with one pending event per
user; reviews, which are decided at purchase time but happen later, join the
same heap as single pending events.

>>> from ecomstream.simulator.config import SimConfig
>>> events = list(generate(SimConfig(users=50, items=40, categories=4, events=200)))
>>> len(events), events[0].topic, events[0].key == events[0].event.user_id
(200, 'clicks', True)
>>> all(a.event.ts <= b.event.ts for a, b in zip(events, events[1:]))
True
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from itertools import count
from typing import Any, NamedTuple

from ecomstream.data.corpus import ReviewCorpus, load_review_corpus
from ecomstream.events import Event, EventTopic, ReviewEvent
from ecomstream.simulator.catalog import Catalog, build_catalog
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.groundtruth import TruthRecorder
from ecomstream.simulator.incidents import Incident, IncidentBook, resolve_incidents
from ecomstream.simulator.population import User, build_population
from ecomstream.simulator.reviews import ReviewWriter
from ecomstream.simulator.rng import substream
from ecomstream.simulator.sessions import Ids, SessionModel, Timed

# Measured mean number of events per session with the default behaviour; only used
# to place random incidents when a run is limited by an event count, not a duration.
EVENTS_PER_SESSION = 7.1


class SimEvent(NamedTuple):
    topic: EventTopic  # contract name: clicks, purchases, reviews
    key: str  # the partition key: user_id for every input topic
    event: Event


class Shop:
    """One run of the simulation. ``events()`` may be iterated once; ``truth()`` any time."""

    def __init__(self, config: SimConfig, corpus: ReviewCorpus | None = None) -> None:
        self.config = config
        corpus = corpus or load_review_corpus()
        self.catalog: Catalog = build_catalog(
            substream(config.seed, "catalog"),
            items=config.items,
            categories=config.categories,
            zipf_exponent=config.zipf_exponent,
        )
        self.users: list[User] = build_population(
            substream(config.seed, "population"),
            self.catalog,
            users=config.users,
            concentration=config.taste_concentration,
            memory=config.behaviour.memory,
        )
        self.incidents: tuple[Incident, ...] = tuple(
            sorted(
                resolve_incidents(
                    config,
                    self.catalog,
                    self.expected_share(),
                    self.span_s(),
                    substream(config.seed, "incidents"),
                ),
                key=lambda i: (i.start_ms, i.item_id),
            )
        )
        self.deals: tuple[int, ...] = self._choose_deals()
        self._heap: list[tuple[int, int, EventTopic, Event, Iterator[Timed] | None]] = []
        self._seq = count()
        self.model = SessionModel(
            config=config,
            catalog=self.catalog,
            incidents=IncidentBook(self.incidents),
            reviews=ReviewWriter(
                substream(config.seed, "reviews"),
                positive=corpus.positive,
                negative=corpus.negative,
            ),
            rng=substream(config.seed, "sessions"),
            ids=Ids(config.seed),
            schedule=self._schedule,
            deals=self.deals,
        )
        self.recorder = TruthRecorder()
        self._started = False

    def expected_share(self) -> list[float]:
        """Each item's expected share of entry views: mean taste × popularity in category."""
        n_cat = len(self.catalog.categories)
        mean_taste = [sum(u.taste[c] for u in self.users) / len(self.users) for c in range(n_cat)]
        share = [0.0] * len(self.catalog.items)
        for c, ids in enumerate(self.catalog.by_category):
            total = self.catalog.by_category_cum[c][-1]
            for index in ids:
                share[index] = mean_taste[c] * self.catalog.items[index].popularity / total
        return share

    def _choose_deals(self) -> tuple[int, ...]:
        """Incident items first, then the most popular well-rated items, ``config.deals`` in all."""
        chosen = list(dict.fromkeys(incident.item_index for incident in self.incidents))
        share = self.expected_share()
        for index in sorted(range(len(share)), key=lambda i: -share[i]):
            if len(chosen) >= self.config.deals:
                break
            if index not in chosen and self.catalog.items[index].quality >= 0.6:
                chosen.append(index)
        return tuple(chosen)

    def span_s(self) -> float:
        """The run's simulated length: its duration, or an estimate from the event count."""
        if self.config.duration_s is not None:
            return self.config.duration_s
        assert self.config.events is not None
        per_s = self.config.users * self.config.sessions_per_user_hour / 3600 * EVENTS_PER_SESSION
        return self.config.events / per_s

    def _schedule(self, ts: int, topic: EventTopic, event: Event) -> None:
        heapq.heappush(self._heap, (ts, next(self._seq), topic, event, None))

    def events(self) -> Iterator[SimEvent]:
        """The run's events in event-time order (ties: in the order they were scheduled)."""
        if self._started:
            raise RuntimeError("a Shop's events can be iterated only once; build a new Shop")
        self._started = True
        heap, seq, push, pop = self._heap, self._seq, heapq.heappush, heapq.heappop
        for user in self.users:
            user_events = self.model.timeline(user)
            ts, topic, event = next(user_events)
            push(heap, (ts, next(seq), topic, event, user_events))
        end = self.config.end_ms
        limit = self.config.events
        observe = self.recorder.observe
        review_seen, index_of = self.model.review_seen, self.catalog.index_of
        emitted = 0
        while heap:
            ts, _, topic, event, timeline = pop(heap)
            if end is not None and ts >= end:
                return
            observe(topic, event)
            if timeline is None and isinstance(event, ReviewEvent):  # now visible to shoppers
                review_seen(index_of(event.item_id), event.rating)
            emitted += 1
            yield SimEvent(topic, event.user_id, event)
            if limit is not None and emitted >= limit:
                return
            if timeline is not None:
                ts, topic, event = next(timeline)
                push(heap, (ts, next(seq), topic, event, timeline))

    def truth(self) -> dict[str, Any]:
        truth = self.recorder.build(self.config, self.catalog, self.users, self.incidents)
        truth["deals"] = [
            {"item_id": self.catalog.item_id(i), "campaign": self.model.campaigns[i]}
            for i in self.deals
        ]
        return truth


def generate(config: SimConfig, corpus: ReviewCorpus | None = None) -> Iterator[SimEvent]:
    """The events of a fresh run of ``config`` (use :class:`Shop` to get the truth too)."""
    return Shop(config, corpus).events()
