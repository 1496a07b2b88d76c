"""Validate clicks, purchases and reviews; refuse bad ones to ``dead-letters``.

Accepted events go, batch by batch, to the behaviour handlers that later
capabilities register (profiles, recommendations). A batch is acknowledged
only after its dead letters are delivered and every handler has returned:
at-least-once, nothing lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust

from ecomstream import metrics
from ecomstream.config import Settings
from ecomstream.deadletters import encode_dead_letter
from ecomstream.events import Limits
from ecomstream.ingest import Accepted, RawMessage, count_by_topic, triage
from streams.topics import Topics

BatchHandler = Callable[[Sequence[Accepted]], Awaitable[None]]


def register_ingest(
    app: faust.App, topics: Topics, settings: Settings, handlers: Sequence[BatchHandler]
) -> None:
    limits = Limits(max_review_chars=settings.max_review_chars)
    within = settings.ingest_batch_ms / 1000

    @app.agent(topics.inputs, name="ingest")
    async def ingest(stream: Any) -> None:
        async for events in stream.take_events(settings.ingest_batch_size, within=within):
            started = time.perf_counter()
            messages = [
                RawMessage(
                    topics.logical_name[e.message.topic],
                    e.message.partition,
                    e.message.offset,
                    e.message.key,
                    e.message.value,
                )
                for e in events
            ]
            for name, n in _count(messages).items():
                metrics.EVENTS_CONSUMED.labels(name).inc(n)
            result = triage(messages, limits)
            now_ms = int(time.time() * 1000)
            deliveries = []
            for refused in result.refused:
                message = refused.message
                metrics.DEAD_LETTERS.labels(message.topic, refused.rejection.reason).inc()
                deliveries.append(
                    await topics.dead_letters.send(
                        key=message.key,
                        value=encode_dead_letter(
                            message.source, message.key, message.value, refused.rejection, now_ms
                        ),
                    )
                )
            for handler in handlers:
                await handler(result.accepted)
            await asyncio.gather(*deliveries)
            for name, n in count_by_topic(result.accepted).items():
                metrics.EVENTS_PROCESSED.labels(name).inc(n)
            if result.accepted:
                newest = max(a.event.ts for a in result.accepted)
                metrics.EVENT_TIME_LAG.labels("ingest").set(time.time() - newest / 1000)
            metrics.BATCH_SIZE.labels("ingest").observe(len(messages))
            metrics.PROCESSING_SECONDS.labels("ingest").observe(time.perf_counter() - started)


def _count(messages: Sequence[RawMessage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in messages:
        counts[m.topic] = counts.get(m.topic, 0) + 1
    return counts
