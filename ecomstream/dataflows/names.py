"""Physical topic names of the contract and of the app's internal topics (see
:meth:`ecomstream.config.Settings.internal_topic`)."""

from __future__ import annotations

from dataclasses import dataclass

from ecomstream.config import Settings


@dataclass(frozen=True)
class TopicNames:
    clicks: str
    purchases: str
    reviews: str
    review_scores: str
    sentiment_alerts: str
    recommendation_updates: str
    dead_letters: str
    item_deltas: str
    review_scores_by_user: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        t, internal = settings.topic, settings.internal_topic
        return cls(
            clicks=t("clicks"),
            purchases=t("purchases"),
            reviews=t("reviews"),
            review_scores=t("review-scores"),
            sentiment_alerts=t("sentiment-alerts"),
            recommendation_updates=t("recommendation-updates"),
            dead_letters=t("dead-letters"),
            item_deltas=internal("item-deltas"),
            review_scores_by_user=internal("review-scores-by-user"),
        )
