"""The naive comparison: the same profile logic as a one-event-at-a-time Faust agent.

One table read and one table write (one changelog record) per event, one
recommendation per trigger: what a straightforward Faust port of the behaviour
flow does. Run as ``python -m benchmarks.naive_faust worker``; its progress is
``ecomstream_events_processed_total`` on /metrics.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from ecomstream import metrics
from ecomstream.config import Settings
from ecomstream.deadletters import SourcePosition
from ecomstream.events import INPUT_TOPICS, Rejection, decode_event
from ecomstream.ingest import Accepted
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.recommend.items import ItemIndex
from ecomstream.recommend.pipeline import process_batch
from ecomstream.recommend.recommender import recommend


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        autodiscover=False,
    )
    inputs = app.topic(*(settings.topic(t) for t in INPUT_TOPICS), key_type=bytes,
                       value_type=bytes, key_serializer="raw", value_serializer="raw")  # fmt: skip
    updates = app.topic(settings.topic("naive-updates"), key_serializer="raw",
                        value_serializer="raw")  # fmt: skip
    profiles = app.Table("naive-profiles", default=None, partitions=settings.partitions)
    items = ItemIndex()
    logical = {settings.topic(t): t for t in INPUT_TOPICS}

    @app.agent(inputs)
    async def naive(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            topic = logical[message.topic]
            decoded = decode_event(topic, message.value)
            if isinstance(decoded, Rejection):
                continue
            accepted = Accepted(SourcePosition(topic, message.partition, message.offset),
                                message.key, decoded)  # fmt: skip
            key = decoded.user_id
            stored: str | None = profiles.get(key)
            current = decode_profile(stored.encode()) if stored else None
            outcome = process_batch([accepted], {decoded.user_id: current}.get)
            profile = outcome.profiles[decoded.user_id]
            profiles[key] = encode_profile(profile).decode()
            for trigger in outcome.triggers:
                update = recommend(profile, items, trigger.event_id, trigger.ts)
                await updates.send(key=key.encode(), value=update.to_json())
            metrics.EVENTS_PROCESSED.labels(topic).inc()

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            return self.json({"ready": bool(app.consumer.assignment())})

    return app


if __name__ == "__main__":
    create_app(Settings()).main()
