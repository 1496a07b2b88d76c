"""The topics the Faust agents use, named through the settings' prefix.

The batch processors (``streams/processors.py``) name their own topics through
:class:`ecomstream.dataflows.TopicNames`.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from ecomstream.config import Settings
from ecomstream.events import INPUT_TOPICS
from ecomstream.topics import OUTPUT_TOPICS


@dataclass(frozen=True)
class Topics:
    reviews: TopicT  # read as raw bytes by the scoring agent
    review_scores: TopicT
    logical_name: dict[str, str]  # physical topic name -> contract name


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    def raw(name: str) -> TopicT:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            replicas=settings.replication_factor,
        )

    return Topics(
        reviews=raw("reviews"),
        review_scores=raw("review-scores"),
        logical_name={settings.topic(n): n for n in (*INPUT_TOPICS, *OUTPUT_TOPICS)},
    )
