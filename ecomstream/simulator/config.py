"""Simulation parameters, and the parsers the CLI needs for times and durations.

Why one frozen dataclass: a run is fully described by its ``SimConfig`` (the
seed included), so the config is written verbatim into the ground truth and
the same config always reproduces the same events.

>>> parse_duration("1h30m")
5400.0
>>> parse_start("2026-01-01T00:00Z") == DEFAULT_START_MS
True
>>> IncidentSpec.parse("i0007@45m")
IncidentSpec(item_id='i0007', offset_s=2700.0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

DEFAULT_START_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed so runs reproduce
DEFAULT_DURATION_S: Final = 2 * 3600.0

_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class SimConfigError(ValueError):
    """A configuration that cannot be simulated (the CLI reports it as a usage error)."""


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"45s"``, ``"30m"``, ``"2h"``, ``"1h30m"``, ``"1d"``."""
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"not a duration: {text!r} (try 90s, 30m, 2h, 1h30m)") from None
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {text!r}")
    return seconds


def parse_start(text: str) -> int:
    """Epoch ms from ISO 8601 (UTC when no zone is given) or from an epoch-ms integer."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class IncidentSpec:
    """An explicit incident: ``item_id``'s quality collapses ``offset_s`` after the start."""

    item_id: str
    offset_s: float

    @classmethod
    def parse(cls, text: str) -> IncidentSpec:
        item, sep, offset = text.partition("@")
        if not sep or not item:
            raise ValueError(f"expected ITEM_ID@OFFSET (e.g. i0007@45m), got {text!r}")
        return cls(item.strip(), parse_duration(offset))


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Funnel and timing knobs of the session model (probabilities are per step).

    The defaults give ~7 events per session, ~4% of sessions ending in an order and
    ~65% of carts abandoned, close to published e-commerce averages.
    """

    think_median_s: float = 12.0  # between two items in a session
    think_sigma: float = 1.0  # log-normal shape of every think time
    continue_prob: float = 0.8  # after each item: look at another one
    related_prob: float = 0.7  # next item is a neighbour of the current one
    explore_prob: float = 0.1  # next category from shop-wide popularity, not the user's taste
    search_prob: float = 0.15  # a jump to a new category starts with a search
    revisit_prob: float = 0.35  # a session starts from an item the user saw or carted before
    click_prob: float = 0.18  # open an item that was viewed
    cart_prob: float = 0.02  # add an opened item to the cart
    wishlist_prob: float = 0.03
    remove_prob: float = 0.12  # per cart line at the end of the session
    checkout_prob: float = 0.3  # a non-empty cart becomes an order
    revisit_boost: float = 2.5  # click/cart odds on an item the user came back for
    deal_prob: float = 0.12  # a session starts at a featured deal (tagged with a campaign)
    deal_click_prob: float = 0.6
    deal_cart_prob: float = 0.35
    deal_checkout_prob: float = 0.6
    max_quantity: int = 3
    memory: int = 20  # recently seen items a user may come back to
    # Before paying, most shoppers read each cart item's latest reviews; a run of bad ones
    # (<= 2 stars) beyond the usual share makes them put the item back.
    review_check_prob: float = 0.8  # reads the latest reviews of a cart line at checkout
    reviews_read: int = 5  # how many (fewer if the item has fewer; missing ones are not bad)
    bad_review_tolerance: float = 0.2  # share of bad reviews shrugged off; all bad: put back


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that determines a run. Same config → byte-identical output."""

    seed: int = 42
    users: int = 10_000
    items: int = 600
    categories: int = 10
    start_ms: int = DEFAULT_START_MS
    duration_s: float | None = DEFAULT_DURATION_S  # simulated time; None: stop on ``events``
    events: int | None = None  # stop after this many events (whichever limit comes first)
    sessions_per_user_hour: float = 1.0  # mean; each user's activity varies around it
    zipf_exponent: float = 1.1  # popularity skew of items within a category
    taste_concentration: float = 0.3  # Dirichlet alpha per category: lower = narrower taste
    review_rate: float = 0.6  # share of purchased items that get reviewed
    review_delay_median_s: float = 900.0
    incidents: tuple[IncidentSpec, ...] = ()
    random_incidents: int = 0  # extra incidents on popular items, mid-run
    incident_duration_s: float | None = None  # None: quality never recovers
    incident_quality: float = 0.08  # the item's quality while the incident lasts
    incident_review_boost: float = 1.5  # unhappy buyers review more often
    # Shoppers judge an item by a blend of its hidden quality and its recent reviews
    # (0: reviews change nothing). Above 0, an incident also costs the item sales
    # once bad reviews show, which is what makes sentiment-aware ranking pay off.
    review_influence: float = 0.7
    # Featured deals: incident items plus the most popular others, up to this many. A deal
    # item sells far better (a best-seller's bad batch is the classic review storm), which
    # gives it enough reviews for a baseline before its incident and a detection after it.
    deals: int = 3
    behaviour: Behaviour = field(default_factory=Behaviour)

    def __post_init__(self) -> None:
        if self.duration_s is None and self.events is None:
            raise SimConfigError("a run needs a duration or a number of events")
        if self.duration_s is not None and self.duration_s <= 0:
            raise SimConfigError("duration must be positive")
        if self.events is not None and self.events <= 0:
            raise SimConfigError("events must be positive")
        if self.users < 1 or self.items < 1 or self.categories < 1:
            raise SimConfigError("users, items and categories must be at least 1")
        if self.items < self.categories:
            raise SimConfigError("need at least one item per category")
        if not 0.0 <= self.review_rate <= 1.0:
            raise SimConfigError("review_rate must be in [0, 1]")
        if not 0.0 <= self.review_influence <= 1.0:
            raise SimConfigError("review_influence must be in [0, 1]")
        if not 0.0 <= self.incident_quality <= 1.0:
            raise SimConfigError("incident_quality must be in [0, 1]")
        if self.sessions_per_user_hour <= 0:
            raise SimConfigError("sessions_per_user_hour must be positive")

    @property
    def end_ms(self) -> int | None:
        """Event time at which the run stops, or None when only ``events`` limits it."""
        if self.duration_s is None:
            return None
        return self.start_ms + round(self.duration_s * 1000)
