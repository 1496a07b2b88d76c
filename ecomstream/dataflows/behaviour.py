"""Clicks, purchases and reviews → validation, user profiles, item deltas, recommendations.

One partition's batch at a time (inputs are co-partitioned by user_id):
refused messages go to ``dead-letters``; accepted events update the
``profiles`` table (each touched profile is written to the changelog once per
commit); item deltas go, keyed by item, to their owner (:mod:`.items`); users
whose profile changed meaningfully (debounced) get a ``recommendation-updates``
record ranked against the worker's replica of item state. Review scores
re-keyed by user fold into the users' sentiment tendency.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from ecomstream import metrics
from ecomstream.dataflows.names import TopicNames
from ecomstream.deadletters import encode_dead_letter
from ecomstream.events import Limits
from ecomstream.ingest import Accepted, RawMessage, count_by_topic, triage
from ecomstream.processing import BatchContext, Record, TableSpec
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.profiles.profile import UserProfile
from ecomstream.profiles.scores import parse_review_score
from ecomstream.recommend.items import ItemView, encode_delta
from ecomstream.recommend.native import NativeBehaviour, NativeItemIndex
from ecomstream.recommend.pipeline import (
    DEFAULT_PIPELINE_CONFIG,
    PipelineConfig,
    process_batch,
    process_review_scores,
)
from ecomstream.recommend.recommender import (
    DEFAULT_RECOMMENDER_CONFIG,
    RecommenderConfig,
    recommend,
)

PROFILES: TableSpec[UserProfile] = TableSpec(
    "profiles", encode=encode_profile, decode=decode_profile, mutable=True
)
AGENT = "behaviour"


class BehaviourFlow:
    tables: tuple[TableSpec[Any], ...]

    def __init__(
        self,
        names: TopicNames,
        items: ItemView,
        *,
        prefix: str = "",
        limits: Limits | None = None,
        pipeline: PipelineConfig = DEFAULT_PIPELINE_CONFIG,
        recommender: RecommenderConfig = DEFAULT_RECOMMENDER_CONFIG,
    ) -> None:
        self.names = names
        self.items = items
        self.prefix = prefix
        self.limits = limits or Limits()
        self.pipeline = pipeline
        self.recommender = recommender
        # A native replica brings native profiles: the same outputs, several times faster.
        self.native = (
            NativeBehaviour(items, pipeline, recommender)
            if isinstance(items, NativeItemIndex)
            else None
        )
        self.tables = (self.native.table,) if self.native is not None else (PROFILES,)

    @property
    def input_topics(self) -> tuple[str, ...]:
        n = self.names
        return (n.clicks, n.purchases, n.reviews, n.review_scores_by_user)

    def __call__(self, ctx: BatchContext, records: Sequence[Record]) -> None:
        raw: list[RawMessage] = []
        scores: list[tuple[Any, str, int, int]] = []
        for r in records:
            if r.topic == self.names.review_scores_by_user:
                score = parse_review_score(orjson.loads(r.value)) if r.value else None
                if score is not None:
                    scores.append((score, "review-scores-by-user", r.partition, r.offset))
            else:
                raw.append(
                    RawMessage(
                        r.topic.removeprefix(self.prefix), r.partition, r.offset, r.key, r.value
                    )
                )
        profiles = ctx.table(self.tables[0])
        if raw:
            self._events(ctx, raw, profiles)
        if scores:
            if self.native is not None:
                profiles.update(self.native.process_review_scores(profiles.get, scores))
            else:
                outcome = process_review_scores(scores, profiles.get, self.pipeline)
                profiles.update(outcome.profiles)

    def _events(self, ctx: BatchContext, raw: list[RawMessage], profiles: Any) -> None:
        for name, n in Counter(m.topic for m in raw).items():
            metrics.EVENTS_CONSUMED.labels(name).inc(n)
        result = triage(raw, self.limits)
        now_ms = int(time.time() * 1000)
        for refused in result.refused:
            m = refused.message
            metrics.DEAD_LETTERS.labels(m.topic, refused.rejection.reason).inc()
            ctx.send(
                self.names.dead_letters,
                m.key,
                encode_dead_letter(m.source, m.key, m.value, refused.rejection, now_ms),
            )
        if not result.accepted:
            return
        if self.native is not None:
            self._native_events(ctx, result.accepted, profiles, self.native)
        else:
            self._python_events(ctx, result.accepted, profiles)
        for name, n in count_by_topic(result.accepted).items():
            metrics.EVENTS_PROCESSED.labels(name).inc(n)
        newest = max(a.event.ts for a in result.accepted)
        metrics.EVENT_TIME_LAG.labels(AGENT).set(time.time() - newest / 1000)

    def _native_events(
        self, ctx: BatchContext, accepted: list[Accepted], profiles: Any, native: NativeBehaviour
    ) -> None:
        events = [(a.event, a.source.topic, a.source.partition, a.source.offset) for a in accepted]
        landmark = max(a.event.ts for a in accepted)
        touched, deltas, triggers, _, _ = native.process_events(profiles.get, events, landmark)
        profiles.update(touched)
        for key, value in deltas:
            ctx.send(self.names.item_deltas, key, value)
        for user_id, event_id, ts, _ in triggers:
            update = native.recommend(touched[user_id], user_id, event_id, ts)
            ctx.send(self.names.recommendation_updates, user_id.encode(), update)
        metrics.RECOMMENDATION_UPDATES.inc(len(triggers))

    def _python_events(self, ctx: BatchContext, accepted: list[Accepted], profiles: Any) -> None:
        outcome = process_batch(accepted, profiles.get, self.pipeline)
        profiles.update(outcome.profiles)
        for item_id, delta in outcome.item_deltas.items():
            ctx.send(self.names.item_deltas, item_id.encode(), encode_delta(delta))
        for trigger in outcome.triggers:
            update = recommend(
                outcome.profiles[trigger.user_id],
                self.items,
                trigger.event_id,
                trigger.ts,
                self.recommender,
            )
            ctx.send(self.names.recommendation_updates, trigger.user_id.encode(), update.to_json())
        metrics.RECOMMENDATION_UPDATES.inc(len(outcome.triggers))
