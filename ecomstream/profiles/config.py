"""Profile parameters: one frozen value, so a run (stream or replay) is described by it.

Why the action table lives here: the interest weight, the "strength" of a recently
seen item and the index of an action's window counter are all per-action facts, and
keeping them in one place keeps the hot path to a single dict look-up per event.

>>> cfg = ProfileConfig(interest_half_life_s=3600)
>>> cfg.interest_half_life_ms, cfg.windows[0].buckets, cfg.windows[1].buckets
(3600000, 12, 24)
>>> ACTION_INDEX["purchase"], ACTION_NAMES[ACTION_INDEX["view"]]
(6, 'view')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ecomstream.config import dataclass_from_env

# Every counted action, in the fixed order of the window counters (codec-stable: append only).
ACTION_NAMES: Final[tuple[str, ...]] = (
    "view",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "search",
    "wishlist",
    "purchase",
    "review",
)
ACTION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(ACTION_NAMES)}
N_ACTIONS: Final = len(ACTION_NAMES)

# Strength of a recently seen item (the strongest thing the user did with it).
SEEN, CLICKED, WISHED, CARTED = 1, 2, 3, 4
STRENGTH_NAMES: Final[dict[int, str]] = {
    SEEN: "viewed",
    CLICKED: "opened",
    WISHED: "wish-listed",
    CARTED: "in cart",
}


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A rolling event-time window counted in ``buckets`` buckets of ``bucket_s`` seconds.

    The window is bucket-aligned: "the last hour" at time T is the 12 five-minute
    buckets ending with T's bucket, so its resolution is one bucket.
    """

    name: str
    bucket_s: int
    window_s: int

    def __post_init__(self) -> None:
        if self.bucket_s <= 0 or self.window_s % self.bucket_s:
            raise ValueError("window_s must be a positive multiple of bucket_s")

    @property
    def bucket_ms(self) -> int:
        return self.bucket_s * 1000

    @property
    def buckets(self) -> int:
        return self.window_s // self.bucket_s


DEFAULT_WINDOWS: Final = (WindowSpec("1h", 300, 3600), WindowSpec("24h", 3600, 86400))


def _interest_weights() -> dict[str, float]:
    return {
        "view": 1.0,
        "click": 2.0,
        "add_to_cart": 4.0,
        "remove_from_cart": 0.0,
        "search": 1.0,
        "wishlist": 3.0,
        "purchase": 6.0,
        "review": 0.0,  # a review adds ``review_interest`` only when the rating is good
    }


def _strengths() -> dict[str, int]:
    return {
        "view": SEEN,
        "search": SEEN,
        "click": CLICKED,
        "remove_from_cart": CLICKED,  # special-cased: lowers a "in cart" item to "opened"
        "wishlist": WISHED,
        "add_to_cart": CARTED,
    }


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """Bounds, half-lives and the debounce rule of user profiles."""

    interest_half_life_s: float = 24 * 3600.0
    max_categories: int = 32  # interest map bound: the weakest category is evicted
    recent_seen: int = 20  # last N items seen (distinct, most recent kept)
    recent_bought: int = 20  # last N items bought (distinct)
    session_items: int = 5  # co-visitation: a new item pairs with the last S items of the session
    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    price_alpha: float = 0.2  # EWMA weight of a new purchase price (on log price)
    review_interest: float = 2.0  # interest added to the category of a review rated >= 4
    interest_weights: dict[str, float] = field(default_factory=_interest_weights)
    strengths: dict[str, int] = field(default_factory=_strengths)
    # Debounce / meaningful change (event time).
    debounce_s: float = 30.0
    cart_triggers: bool = True  # a cart change triggers at once, like a purchase
    signature_categories: int = 3
    signature_items: int = 5
    min_new_items: int = 2

    def __post_init__(self) -> None:
        if self.interest_half_life_s <= 0:
            raise ValueError("interest_half_life_s must be positive")
        if min(self.max_categories, self.recent_seen, self.recent_bought) < 1:
            raise ValueError("profile bounds must be at least 1")
        if not 0.0 < self.price_alpha <= 1.0:
            raise ValueError("price_alpha must be in (0, 1]")

    @property
    def interest_half_life_ms(self) -> int:
        return round(self.interest_half_life_s * 1000)

    @property
    def debounce_ms(self) -> int:
        return round(self.debounce_s * 1000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProfileConfig:
        """Defaults overridden by ``ECOMSTREAM_PROFILE_<FIELD>`` variables (scalar fields).

        >>> ProfileConfig.from_env({"ECOMSTREAM_PROFILE_DEBOUNCE_S": "120"}).debounce_ms
        120000
        """
        return dataclass_from_env(cls, "ECOMSTREAM_PROFILE_", environ)


DEFAULT_PROFILE_CONFIG: Final = ProfileConfig()
