"""Dead-letter records: what was refused, from where, and why.

Why base64: the original value may be invalid UTF-8 or not JSON at all, and
must come back byte-for-byte for inspection or re-drive.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from ecomstream.events import Rejection


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


def dead_letter_id(source: SourcePosition) -> str:
    """Deterministic: the same input message always yields the same id.

    >>> dead_letter_id(SourcePosition("clicks", 2, 41))
    'clicks/2/41'
    """
    return f"{source.topic}/{source.partition}/{source.offset}"


def encode_dead_letter(
    source: SourcePosition,
    key: bytes | None,
    value: bytes | None,
    rejection: Rejection,
    ts_ms: int,
) -> bytes:
    """The JSON value written to ``dead-letters`` for a refused message."""
    return orjson.dumps(
        {
            "dead_letter_id": dead_letter_id(source),
            "source": {
                "topic": source.topic,
                "partition": source.partition,
                "offset": source.offset,
            },
            "reason": rejection.reason,
            "detail": rejection.detail,
            "key_b64": base64.b64encode(key).decode() if key is not None else None,
            "value_b64": base64.b64encode(value).decode() if value is not None else None,
            "value_bytes": len(value) if value is not None else 0,
            "ts": ts_ms,
        }
    )


def original_value(record: dict[str, object]) -> bytes | None:
    """The refused message's value, decoded back from a dead-letter record."""
    encoded = record.get("value_b64")
    return base64.b64decode(encoded) if isinstance(encoded, str) else None
