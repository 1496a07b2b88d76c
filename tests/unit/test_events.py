"""The input contract: what is accepted, what is refused and with which reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ecomstream.events import (
    REASONS,
    Action,
    ClickEvent,
    Limits,
    PurchaseEvent,
    Rejection,
    ReviewEvent,
    decode_event,
)

TS = 1_767_225_600_000  # 2026-01-01T00:00Z

CLICK: dict[str, Any] = {
    "event_id": "c1",
    "user_id": "u1",
    "session_id": "s1",
    "item_id": "i1",
    "category": "books",
    "action": "add_to_cart",
    "ts": TS,
}
PURCHASE: dict[str, Any] = {
    "event_id": "p1",
    "order_id": "o1",
    "user_id": "u1",
    "item_id": "i1",
    "category": "books",
    "price": 12.5,
    "quantity": 2,
    "ts": TS,
    "campaign": "spring",
}
REVIEW: dict[str, Any] = {
    "event_id": "r1",
    "review_id": "rv1",
    "user_id": "u1",
    "item_id": "i1",
    "category": "books",
    "rating": 1,
    "text": "质量太差了",
    "lang": "zh",
    "ts": TS,
}


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def test_valid_events_decode_to_typed_models() -> None:
    click = decode_event("clicks", encode(CLICK))
    purchase = decode_event("purchases", encode(PURCHASE))
    review = decode_event("reviews", encode(REVIEW))
    assert isinstance(click, ClickEvent) and click.action is Action.ADD_TO_CART
    assert isinstance(purchase, PurchaseEvent) and purchase.price == 12.5
    assert purchase.campaign == "spring"
    assert isinstance(review, ReviewEvent) and review.text == "质量太差了"


def test_integer_price_is_a_valid_number() -> None:
    purchase = decode_event("purchases", encode({**PURCHASE, "price": 12}))
    assert isinstance(purchase, PurchaseEvent) and purchase.price == 12.0


def test_unknown_fields_are_kept_through_a_round_trip() -> None:
    click = decode_event("clicks", encode({**CLICK, "device": "ios", "ab": {"bucket": 3}}))
    assert isinstance(click, ClickEvent)
    again = orjson.loads(click.to_json())
    assert again["device"] == "ios" and again["ab"] == {"bucket": 3}
    assert decode_event("clicks", click.to_json()) == click


@pytest.mark.parametrize(
    ("topic", "raw", "reason", "mentions"),
    [
        ("clicks", b"", "empty", "empty"),
        ("clicks", None, "empty", "empty"),
        ("clicks", b"{not json", "invalid_json", "JSON"),
        ("clicks", b'{"event_id": "\xff\xfe"}', "invalid_utf8", "UTF-8"),
        ("clicks", b"[1, 2]", "not_an_object", "list"),
        ("clicks", b'"text"', "not_an_object", "str"),
        (
            "clicks",
            encode({k: v for k, v in CLICK.items() if k != "event_id"}),
            "missing_field",
            "'event_id'",
        ),
        ("clicks", encode({**CLICK, "user_id": 42}), "wrong_type", "'user_id'"),
        ("clicks", encode({**CLICK, "user_id": ""}), "invalid_value", "'user_id'"),
        ("clicks", encode({**CLICK, "action": "teleport"}), "invalid_value", "'action'"),
        ("clicks", encode({**CLICK, "ts": "2026-01-01"}), "bad_timestamp", "'ts'"),
        ("clicks", encode({**CLICK, "ts": 1_767_225_600}), "bad_timestamp", "epoch milliseconds"),
        ("clicks", encode({**CLICK, "ts": -1}), "bad_timestamp", "'ts'"),
        ("purchases", encode({**PURCHASE, "price": -3}), "out_of_range", "'price'"),
        ("purchases", encode({**PURCHASE, "price": "12.5"}), "wrong_type", "'price'"),
        ("purchases", encode({**PURCHASE, "quantity": 0}), "out_of_range", "'quantity'"),
        ("purchases", encode({**PURCHASE, "quantity": 1.5}), "wrong_type", "'quantity'"),
        ("purchases", encode({**PURCHASE, "quantity": True}), "wrong_type", "'quantity'"),
        ("reviews", encode({**REVIEW, "rating": 6}), "out_of_range", "'rating'"),
        ("reviews", encode({**REVIEW, "rating": "5"}), "wrong_type", "'rating'"),
        ("reviews", encode({**REVIEW, "text": None}), "wrong_type", "'text'"),
        ("reviews", encode({**REVIEW, "event_id": "x" * 500}), "too_large", "'event_id'"),
        ("orders", encode(CLICK), "unknown_topic", "orders"),
    ],
)
def test_bad_input_is_refused_with_a_precise_reason(
    topic: str, raw: bytes | None, reason: str, mentions: str
) -> None:
    result = decode_event(topic, raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.reason in REASONS
    assert mentions in result.detail


def test_oversized_review_text_is_a_validation_failure_with_a_configurable_limit() -> None:
    text = "好" * 2_000
    raw = encode({**REVIEW, "text": text})
    assert isinstance(decode_event("reviews", raw), ReviewEvent)
    refused = decode_event("reviews", raw, Limits(max_review_chars=1_000))
    assert refused == Rejection("too_large", "field 'text': 2000 characters, limit 1000")


def test_a_one_megabyte_message_is_refused_before_parsing() -> None:
    raw = encode({**REVIEW, "text": "x" * 1_048_576})
    result = decode_event("reviews", raw)
    assert isinstance(result, Rejection) and result.reason == "too_large"
    assert "bytes" in result.detail


def test_non_finite_number_is_refused_as_invalid_json() -> None:
    raw = (
        b'{"event_id":"p","order_id":"o","user_id":"u","item_id":"i","category":"c",'
        b'"price":1e999,"quantity":1,"ts":1767225600000}'
    )
    result = decode_event("purchases", raw)
    assert isinstance(result, Rejection) and result.reason == "invalid_json"
