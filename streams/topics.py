"""The topic contract (DESIGN.md) as Faust topics, named through the settings' prefix."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from ecomstream.config import Settings
from ecomstream.events import INPUT_TOPICS
from ecomstream.topics import OUTPUT_TOPICS


@dataclass(frozen=True)
class Topics:
    inputs: TopicT  # clicks, purchases and reviews, read as raw bytes
    reviews: TopicT
    review_scores: TopicT
    sentiment_alerts: TopicT
    recommendation_updates: TopicT
    dead_letters: TopicT
    logical_name: dict[str, str]  # physical topic name -> contract name


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    def raw(*names: str) -> TopicT:
        return app.topic(
            *(settings.topic(n) for n in names),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            replicas=settings.replication_factor,
        )

    return Topics(
        inputs=raw(*INPUT_TOPICS),
        reviews=raw("reviews"),
        review_scores=raw("review-scores"),
        sentiment_alerts=raw("sentiment-alerts"),
        recommendation_updates=raw("recommendation-updates"),
        dead_letters=raw("dead-letters"),
        logical_name={settings.topic(n): n for n in (*INPUT_TOPICS, *OUTPUT_TOPICS)},
    )
