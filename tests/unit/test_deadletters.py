from __future__ import annotations

import orjson

from ecomstream.deadletters import SourcePosition, encode_dead_letter, original_value
from ecomstream.events import Rejection


def test_dead_letter_keeps_the_original_bytes_position_and_reason() -> None:
    value = b'{"broken": \xff'
    record = orjson.loads(
        encode_dead_letter(
            SourcePosition("reviews", 3, 1207),
            b"u9",
            value,
            Rejection("invalid_utf8", "message is not valid UTF-8"),
            1_767_225_600_000,
        )
    )
    assert original_value(record) == value
    assert record["source"] == {"topic": "reviews", "partition": 3, "offset": 1207}
    assert record["reason"] == "invalid_utf8"
    assert record["dead_letter_id"] == "reviews/3/1207"
    assert record["value_bytes"] == len(value)


def test_dead_letter_of_an_empty_message_has_no_value() -> None:
    record = orjson.loads(
        encode_dead_letter(
            SourcePosition("clicks", 0, 0), None, None, Rejection("empty", "empty"), 0
        )
    )
    assert original_value(record) is None
    assert record["key_b64"] is None
