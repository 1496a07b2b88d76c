"""Score reviews in micro-batches and publish them on ``review-scores`` (keyed by item).

While the scorer is unavailable ``score()`` waits, so this agent stops taking
reviews (backpressure) rather than dropping one or inventing a label. Bad
input was already dead-lettered by ingest; here it is skipped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust

from ecomstream import metrics
from ecomstream.config import Settings
from ecomstream.events import Limits, ReviewEvent, decode_event
from ecomstream.inference import Scorer, ScoringSettings, build_scorer
from ecomstream.inference.records import encode_review_score, review_score_record
from streams.topics import Topics


def register_scoring(app: faust.App, topics: Topics, settings: Settings) -> None:
    scoring = ScoringSettings()
    limits = Limits(max_review_chars=settings.max_review_chars)
    scorer_ref: list[Scorer] = []

    @app.agent(topics.reviews, name="score-reviews")
    async def score_reviews(stream: Any) -> None:
        if not scorer_ref:
            scorer_ref.append(build_scorer(scoring))
        scorer = scorer_ref[0]
        within = scoring.score_batch_ms / 1000
        async for events in stream.take_events(scoring.score_batch_size, within=within):
            reviews = [
                r
                for r in (decode_event("reviews", e.message.value, limits) for e in events)
                if isinstance(r, ReviewEvent)
            ]
            if not reviews:
                continue
            started = time.perf_counter()
            scores = await scorer.score([r.text for r in reviews])
            latency = time.perf_counter() - started
            metrics.SCORER_REQUEST_SECONDS.labels(scoring.scorer).observe(latency)
            metrics.SCORER_BATCH_SIZE.labels(scoring.scorer).observe(len(reviews))
            now_ms = int(time.time() * 1000)
            deliveries = []
            for review, score in zip(reviews, scores, strict=True):
                metrics.REVIEWS_SCORED.labels(score.label).inc()
                record = review_score_record(
                    review, score, scored_at_ms=now_ms, latency_ms=latency * 1000
                )
                deliveries.append(
                    await topics.review_scores.send(
                        key=review.item_id.encode(), value=encode_review_score(record)
                    )
                )
            await asyncio.gather(*deliveries)

    @app.timer(interval=1.0)
    async def export_scorer_state() -> None:
        for scorer in scorer_ref:
            metrics.SCORER_CIRCUIT_OPEN.labels(scoring.scorer).set(0 if scorer.healthy else 1)
