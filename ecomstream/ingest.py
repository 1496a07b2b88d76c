"""Triage of raw input messages into accepted events and dead letters.

Why a plain function over a batch: the Faust agent stays wiring only, and the
whole validation path is testable without a broker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ecomstream.deadletters import SourcePosition
from ecomstream.events import DEFAULT_LIMITS, Event, Limits, Rejection, decode_event


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as read from Kafka; ``topic`` is the contract name, without prefix."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> SourcePosition:
        return SourcePosition(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Accepted:
    source: SourcePosition
    key: bytes | None
    event: Event


@dataclass(frozen=True, slots=True)
class Refused:
    message: RawMessage
    rejection: Rejection


@dataclass(slots=True)
class Triage:
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def triage(messages: Iterable[RawMessage], limits: Limits = DEFAULT_LIMITS) -> Triage:
    """Split a batch, keeping input order within each side.

    >>> ok = b'{"event_id":"e","user_id":"u","ts":1700000000000,"session_id":"s",'
    >>> ok += b'"item_id":"i","category":"c","action":"view"}'
    >>> batch = [RawMessage("clicks", 0, 7, b"u", ok), RawMessage("clicks", 0, 8, b"u", b"")]
    >>> result = triage(batch)
    >>> [a.event.event_id for a in result.accepted], [r.rejection.reason for r in result.refused]
    (['e'], ['empty'])
    """
    result = Triage()
    for message in messages:
        decoded = decode_event(message.topic, message.value, limits)
        if isinstance(decoded, Rejection):
            result.refused.append(Refused(message, decoded))
        else:
            result.accepted.append(Accepted(message.source, message.key, decoded))
    return result


def count_by_topic(items: Iterable[Accepted]) -> Counter[str]:
    return Counter(item.source.topic for item in items)
