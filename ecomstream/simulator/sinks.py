"""Where simulated events go: a JSONL file, or Kafka (paced by a token bucket).

Why JSONL with ``{"topic", "key", "value"}``: a file run is a recording that can be
diffed byte for byte, replayed into Kafka later, or read by tests without a broker.
The value is the same bytes ``event.to_json()`` gives, which Kafka also gets.

>>> from ecomstream.events import ClickEvent
>>> e = ClickEvent(event_id="e1", user_id="u1", session_id="s1", item_id="i1",
...                category="books", action="view", ts=1767225600000)
>>> jsonl_line("clicks", "u1", e)[:48]
b'{"topic":"clicks","key":"u1","value":{"event_id"'
>>> event_json(e) == e.to_json()
True
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from ecomstream.events import Event


def event_json(event: Event) -> bytes:
    """``event.to_json()`` in one pydantic-core call (same bytes, ~3× faster)."""
    return type(event).__pydantic_serializer__.to_json(event)


def jsonl_line(topic: str, key: str, event: Event) -> bytes:
    head = orjson.dumps(topic), orjson.dumps(key)
    return b'{"topic":%b,"key":%b,"value":%b}\n' % (*head, event_json(event))


class JsonlSink:
    """Buffered writer of one JSON object per line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[bytes] = path.open("wb", buffering=1 << 20)

    def write(self, topic: str, key: str, event: Event) -> None:
        self._file.write(jsonl_line(topic, key, event))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(topic, key, value bytes)`` per line, ready for ``decode_event(topic, value)``."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                record: dict[str, Any] = orjson.loads(line)
                yield record["topic"], record["key"], orjson.dumps(record["value"])


class TokenBucket:
    """Paces a producer to ``rate`` events/s with bursts of at most ``burst`` events.

    The clock and the sleep are injectable so tests need not wait.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)  # 50 ms of sends
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()

    async def take(self, n: float = 1.0) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:  # in debt: wait until the debt is paid back
            await self._sleep(-self._tokens / self.rate)


class EventSink(Protocol):
    """What ``run_to_kafka`` needs from a producer."""

    async def start(self) -> None: ...
    async def send(self, topic: str, key: str, event: Event) -> None: ...
    async def flush(self) -> None: ...
    async def stop(self) -> None: ...


class KafkaSink:
    """An aiokafka producer with the delivery settings the topic contract needs.

    acks=all and idempotence: at-least-once without reordering on retries. Sends are
    not awaited one by one (that would cost a round trip each); delivery futures are
    awaited in chunks so that memory stays bounded and errors surface quickly.
    """

    CHUNK = 5_000

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic_name: Callable[[str], str] = lambda name: name,
        linger_ms: int = 5,
        max_batch_size: int = 256 * 1024,
        client_id: str = "ecomstream-simulator",
    ) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
        )
        self._topic_name = topic_name
        self._topics: dict[str, str] = {}
        self._pending: list[asyncio.Future[Any]] = []
        self._previous: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        await self._producer.start()

    async def send(self, topic: str, key: str, event: Event) -> None:
        physical = self._topics.get(topic)
        if physical is None:
            physical = self._topics[topic] = self._topic_name(topic)
        future = await self._producer.send(physical, value=event.to_json(), key=key.encode())
        self._pending.append(future)
        if len(self._pending) >= self.CHUNK:
            # Wait for the chunk before last: keeps one chunk in flight while we go on.
            await asyncio.gather(*self._previous)
            self._previous, self._pending = self._pending, []

    async def flush(self) -> None:
        await self._producer.flush()
        await asyncio.gather(*self._previous, *self._pending)
        self._previous, self._pending = [], []

    async def stop(self) -> None:
        await self._producer.stop()
