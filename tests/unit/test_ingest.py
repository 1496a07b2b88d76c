from __future__ import annotations

import orjson

from ecomstream.events import ClickEvent
from ecomstream.ingest import RawMessage, count_by_topic, triage
from tests.unit.test_events import CLICK, PURCHASE, REVIEW


def test_triage_keeps_every_good_event_and_refuses_every_bad_one_in_order() -> None:
    messages = [
        RawMessage("clicks", 0, 0, b"u1", orjson.dumps(CLICK)),
        RawMessage("clicks", 0, 1, b"u1", b"{"),
        RawMessage("purchases", 1, 0, b"u1", orjson.dumps(PURCHASE)),
        RawMessage("reviews", 2, 5, None, None),
        RawMessage("reviews", 2, 6, b"u1", orjson.dumps(REVIEW)),
        RawMessage("clicks", 0, 2, b"u1", orjson.dumps({**CLICK, "event_id": "c2"})),
    ]
    result = triage(messages)
    assert [(a.source.topic, a.source.offset) for a in result.accepted] == [
        ("clicks", 0),
        ("purchases", 0),
        ("reviews", 6),
        ("clicks", 2),
    ]
    assert [(r.message.offset, r.rejection.reason) for r in result.refused] == [
        (1, "invalid_json"),
        (5, "empty"),
    ]
    assert count_by_topic(result.accepted) == {"clicks": 2, "purchases": 1, "reviews": 1}
    first = result.accepted[0].event
    assert isinstance(first, ClickEvent) and first.event_id == "c1"
