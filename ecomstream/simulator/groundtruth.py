"""Ground truth of a run: what the stream does not show (quality, tastes, incidents),
plus what it did show in a form that is easy to score against (purchases per user).

Why recorded from the emitted events: the truth then matches the stream exactly,
also when a run is cut short by ``events`` or by an interrupt.

>>> truth = {"purchases": {"u1": [{"ts": 5, "item_id": "i1"}, {"ts": 9, "item_id": "i2"}]}}
>>> next_purchase_after(truth, "u1", 5)
{'ts': 9, 'item_id': 'i2'}
>>> next_purchase_after(truth, "u1", 9) is None
True
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from ecomstream.events import ClickEvent, Event, PurchaseEvent
from ecomstream.simulator.catalog import Catalog
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.incidents import Incident
from ecomstream.simulator.population import User

FORMAT = "ecomstream-sim-truth/1"


class TruthRecorder:
    """Counts and per-user purchases, fed one emitted event at a time."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.ratings: Counter[int] = Counter()
        self.sessions: set[str] = set()
        self.orders: set[str] = set()
        self.purchases: dict[str, list[dict[str, Any]]] = {}
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def observe(self, topic: str, event: Event) -> None:
        self.counts[topic] += 1
        if self.first_ts is None:
            self.first_ts = event.ts
        self.last_ts = event.ts
        if isinstance(event, ClickEvent):
            self.actions[event.action.value] += 1
            self.sessions.add(event.session_id)
        elif isinstance(event, PurchaseEvent):
            self.orders.add(event.order_id)
            self.purchases.setdefault(event.user_id, []).append(
                {
                    "ts": event.ts,
                    "item_id": event.item_id,
                    "category": event.category,
                    "order_id": event.order_id,
                    "event_id": event.event_id,
                    "price": event.price,
                    "quantity": event.quantity,
                }
            )
        else:
            self.ratings[event.rating] += 1

    def summary(self) -> dict[str, Any]:
        sessions = len(self.sessions)
        return {
            "total": sum(self.counts.values()),
            "by_topic": {t: self.counts[t] for t in ("clicks", "purchases", "reviews")},
            "actions": dict(sorted(self.actions.items())),
            "ratings": {str(r): self.ratings[r] for r in range(1, 6)},
            "sessions": sessions,
            "orders": len(self.orders),
            "session_conversion": round(len(self.orders) / sessions, 4) if sessions else 0.0,
        }

    def build(
        self,
        config: SimConfig,
        catalog: Catalog,
        users: list[User],
        incidents: tuple[Incident, ...],
    ) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seed": config.seed,
            "config": _jsonable(dataclasses.asdict(config)),
            "start_ts": config.start_ms,
            "end_ts": config.end_ms,
            "first_event_ts": self.first_ts,
            "last_event_ts": self.last_ts,
            "categories": list(catalog.categories),
            "catalog": {
                item.item_id: {
                    "category": item.category,
                    "price": item.price,
                    "quality": item.quality,
                    "popularity": round(item.popularity, 6),
                }
                for item in catalog.items
            },
            "users": {
                user.user_id: {
                    "top_categories": user.top_categories(catalog.categories),
                    "price_sensitivity": user.price_sensitivity,
                }
                for user in users
            },
            "incidents": [incident.as_truth() for incident in incidents],
            "purchases": self.purchases,
            "counts": self.summary(),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_truth(path: Path, truth: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")


def load_truth(path: Path) -> dict[str, Any]:
    truth: dict[str, Any] = orjson.loads(path.read_bytes())
    if truth.get("format") != FORMAT:
        raise ValueError(f"{path} is not a simulator ground truth ({FORMAT})")
    return truth


def next_purchase_after(truth: dict[str, Any], user_id: str, ts: int) -> dict[str, Any] | None:
    """The user's first purchase strictly after ``ts`` (what a recommender should have shown)."""
    for purchase in truth["purchases"].get(user_id, ()):
        if purchase["ts"] > ts:
            return dict(purchase)
    return None
