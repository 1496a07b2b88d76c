"""Event factories for the profile and recommender tests (event time starts at ``T0``)."""

from __future__ import annotations

from itertools import count

from ecomstream.deadletters import SourcePosition
from ecomstream.events import ClickEvent, Event, PurchaseEvent, ReviewEvent
from ecomstream.ingest import Accepted

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MINUTE = 60_000
HOUR = 3_600_000
_ids = count(1)


def click(
    item: str = "i1",
    category: str = "books",
    action: str = "view",
    ts: int = T0,
    user: str = "u1",
    session: str = "s1",
) -> ClickEvent:
    return ClickEvent(
        event_id=f"c{next(_ids)}",
        user_id=user,
        session_id=session,
        item_id=item,
        category=category,
        action=action,  # type: ignore[arg-type]
        ts=ts,
    )


def purchase(
    item: str = "i1",
    category: str = "books",
    ts: int = T0,
    user: str = "u1",
    order: str = "o1",
    price: float = 45.0,
    quantity: int = 1,
) -> PurchaseEvent:
    return PurchaseEvent(
        event_id=f"p{next(_ids)}",
        order_id=order,
        user_id=user,
        item_id=item,
        category=category,
        price=price,
        quantity=quantity,
        ts=ts,
    )


def review(
    item: str = "i1", category: str = "books", rating: int = 5, ts: int = T0, user: str = "u1"
) -> ReviewEvent:
    n = next(_ids)
    return ReviewEvent(
        event_id=f"r{n}",
        review_id=f"rv{n}",
        user_id=user,
        item_id=item,
        category=category,
        rating=rating,
        text="好",
        ts=ts,
    )


def accepted(event: Event, offset: int, partition: int = 0) -> Accepted:
    topic = {"ClickEvent": "clicks", "PurchaseEvent": "purchases", "ReviewEvent": "reviews"}[
        type(event).__name__
    ]
    return Accepted(SourcePosition(topic, partition, offset), event.user_id.encode(), event)
