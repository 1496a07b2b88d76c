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
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ecomstream import metrics
from ecomstream.dataflows.names import TopicNames
from ecomstream.deadletters import encode_dead_letter
from ecomstream.events import Event, Limits, Rejection, decode_event
from ecomstream.ingest import Accepted, RawMessage, Refused, count_by_topic, triage
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
        inputs: list[Record] = []
        scores: list[tuple[Any, str, int, int]] = []
        for r in records:
            if r.topic == self.names.review_scores_by_user:
                score = parse_review_score(orjson.loads(r.value)) if r.value else None
                if score is not None:
                    scores.append((score, "review-scores-by-user", r.partition, r.offset))
            else:
                inputs.append(r)
        profiles = ctx.table(self.tables[0])
        if inputs:
            for name, n in Counter(r.topic for r in inputs).items():
                metrics.EVENTS_CONSUMED.labels(name.removeprefix(self.prefix)).inc(n)
            if self.native is not None:
                self._native_events(ctx, inputs, profiles, self.native)
            else:
                self._events(ctx, inputs, profiles)
        if scores:
            if self.native is not None:
                profiles.update(self.native.process_review_scores(profiles.get, scores))
            else:
                outcome = process_review_scores(scores, profiles.get, self.pipeline)
                profiles.update(outcome.profiles)

    def _raw(self, r: Record) -> RawMessage:
        return RawMessage(r.topic.removeprefix(self.prefix), r.partition, r.offset, r.key, r.value)

    def _dead_letters(self, ctx: BatchContext, refused: list[Refused]) -> None:
        now_ms = int(time.time() * 1000)
        for r in refused:
            m = r.message
            metrics.DEAD_LETTERS.labels(m.topic, r.rejection.reason).inc()
            ctx.send(
                self.names.dead_letters,
                m.key,
                encode_dead_letter(m.source, m.key, m.value, r.rejection, now_ms),
            )

    def _processed(self, accepted: Mapping[str, int], newest: int) -> None:
        for name, n in accepted.items():
            metrics.EVENTS_PROCESSED.labels(name).inc(n)
        if accepted:
            metrics.EVENT_TIME_LAG.labels(AGENT).set(time.time() - newest / 1000)

    def _events(self, ctx: BatchContext, records: list[Record], profiles: Any) -> None:
        """The Python reference: triage, then :func:`process_batch` and :func:`recommend`."""
        result = triage([self._raw(r) for r in records], self.limits)
        self._dead_letters(ctx, result.refused)
        if not result.accepted:
            return
        self._python_events(ctx, result.accepted, profiles)
        newest = max(a.event.ts for a in result.accepted)
        self._processed(count_by_topic(result.accepted), newest)

    def _native_events(
        self, ctx: BatchContext, records: list[Record], profiles: Any, native: NativeBehaviour
    ) -> None:
        """The same in Rust; messages it cannot accept at a glance go to the Python decoder."""
        refused: list[Refused] = []

        def decode(i: int) -> Event | None:
            message = self._raw(records[i])
            decoded = decode_event(message.topic, message.value, self.limits)
            if isinstance(decoded, Rejection):
                refused.append(Refused(message, decoded))
                return None
            return decoded

        prefix = self.prefix
        messages = [(r.topic.removeprefix(prefix), r.partition, r.offset, r.value) for r in records]
        outcome, accepted, newest = native.process_messages(
            profiles.get, messages, decode, self.limits
        )
        touched, deltas, triggers, _, _ = outcome
        self._dead_letters(ctx, refused)
        profiles.update(touched)
        for key, value in deltas:
            ctx.send(self.names.item_deltas, key, value)
        for user_id, event_id, ts, _ in triggers:
            update = native.recommend(touched[user_id], user_id, event_id, ts)
            ctx.send(self.names.recommendation_updates, user_id.encode(), update)
        metrics.RECOMMENDATION_UPDATES.inc(len(triggers))
        self._processed(accepted, newest)

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
