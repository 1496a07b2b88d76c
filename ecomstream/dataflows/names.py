"""Physical topic names of the contract and of the internal repartition topics."""

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
    item_state: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        t = settings.topic
        return cls(
            clicks=t("clicks"),
            purchases=t("purchases"),
            reviews=t("reviews"),
            review_scores=t("review-scores"),
            sentiment_alerts=t("sentiment-alerts"),
            recommendation_updates=t("recommendation-updates"),
            dead_letters=t("dead-letters"),
            item_deltas=t("item-deltas"),
            review_scores_by_user=t("review-scores-by-user"),
            item_state=t("item-state"),
        )
