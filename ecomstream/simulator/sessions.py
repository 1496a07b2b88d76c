"""The behaviour model: one user's sessions as a lazy, time-ordered stream of events.

A session enters the shop (a remembered item, a search, or a popular item in a
liked category), browses related items (view → sometimes click → sometimes
add_to_cart), may remove cart lines, then checks out or abandons the cart.
Before paying, most shoppers read each cart item's latest reviews and put back an
item whose recent reviews are mostly bad (a quality incident costs sales once its
reviews show). Abandoned and wish-listed items are remembered, and later sessions
often start from them: that is what makes a user's next purchase predictable.

Why generators: the shop merges thousands of users' timelines by event time
with a heap, and a generator only computes a user's next event when the merge
needs it, so memory stays flat however long the run.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from itertools import count

from ecomstream.events import Action, ClickEvent, Event, EventTopic, PurchaseEvent, ReviewEvent
from ecomstream.simulator.catalog import Catalog, Item
from ecomstream.simulator.config import SimConfig
from ecomstream.simulator.incidents import IncidentBook
from ecomstream.simulator.population import User
from ecomstream.simulator.reviews import ReviewWriter
from ecomstream.simulator.rng import lognormal_ms, pick, pick_index, substream

Timed = tuple[int, EventTopic, Event]  # (event time ms, topic, event)
Schedule = Callable[[int, EventTopic, Event], None]

MS_PER_HOUR = 3_600_000
REVIEW_EWMA = 0.15
BAD_RATING = 2  # a review of at most this many stars reads as bad
# How a session reached its current item: the entry item's click and cart odds depend on it.
DEAL, REVISIT, SEARCH, BROWSE = "deal", "revisit", "search", "browse"


class Ids:
    """Deterministic ids: the seed plus a counter per kind (``e42-00000017``)."""

    def __init__(self, seed: int) -> None:
        self._tag = f"{seed}-"
        self._events = count(1)
        self._sessions = count(1)
        self._orders = count(1)
        self._reviews = count(1)

    def event(self) -> str:
        return f"e{self._tag}{next(self._events):08d}"

    def session(self) -> str:
        return f"s{self._tag}{next(self._sessions):07d}"

    def order(self) -> str:
        return f"o{self._tag}{next(self._orders):07d}"

    def review(self) -> str:
        return f"r{self._tag}{next(self._reviews):07d}"


class SessionModel:
    """Turns users into event timelines; purchases may schedule a later review."""

    def __init__(
        self,
        *,
        config: SimConfig,
        catalog: Catalog,
        incidents: IncidentBook,
        reviews: ReviewWriter,
        rng: random.Random,
        ids: Ids,
        schedule: Schedule,
        deals: Sequence[int] = (),
    ) -> None:
        self.config = config
        self.b = config.behaviour
        self.catalog = catalog
        self.incidents = incidents
        self.reviews = reviews
        self.rng = rng
        self.ids = ids
        self.schedule = schedule
        self._n_cat = len(catalog.categories)
        self._cat_cum = [sum(catalog.category_weight[: c + 1]) for c in range(self._n_cat)]
        self._end_ms = config.end_ms
        # The star rating a shopper sees: starts at what the quality implies (the shop's
        # history), then follows emitted reviews (an EWMA over roughly the last 7).
        self.shown_rating = [1.0 + 4.0 * item.quality for item in catalog.items]
        self._influence = config.review_influence
        self._perceived = [item.quality for item in catalog.items]  # kept in step with the above
        # The latest visible ratings per item (what a shopper reads at checkout), and the
        # reading decisions' own random stream: runs where nobody is put off stay the same.
        self._latest: list[deque[int]] = [deque(maxlen=self.b.reviews_read) for _ in catalog.items]
        self._reading = substream(config.seed, "reading")
        self.deals = tuple(deals)
        self.campaigns = {index: f"deal-{catalog.items[index].item_id}" for index in deals}

    def review_seen(self, item_index: int, rating: int) -> None:
        """A review became visible (the merge emitted it): later shoppers read it."""
        shown = self.shown_rating
        shown[item_index] += REVIEW_EWMA * (rating - shown[item_index])
        self._latest[item_index].append(rating)
        seen = (shown[item_index] - 1.0) / 4.0
        quality = self.catalog.items[item_index].quality
        self._perceived[item_index] = (1.0 - self._influence) * quality + self._influence * seen

    def perceived(self, item: Item) -> float:
        """Quality as a shopper judges it: hidden quality blended with the shown rating."""
        return self._perceived[item.index]

    def put_off(self, item: Item) -> float:
        """Chance that a shopper who reads ``item``'s latest reviews puts it back.

        0 while the share of bad reviews (<= 2 stars) among the latest ``reviews_read``
        stays within ``bad_review_tolerance``, rising linearly to 1 when all are bad;
        always 0 with ``review_influence`` 0 (shoppers who ignore reviews).
        """
        b = self.b
        if not self._influence:
            return 0.0
        bad = sum(1 for rating in self._latest[item.index] if rating <= BAD_RATING)
        share = bad / b.reviews_read if b.reviews_read else 0.0
        tolerance = b.bad_review_tolerance
        if share <= tolerance:
            return 0.0
        return min(1.0, (share - tolerance) / max(1.0 - tolerance, 1e-9))

    # -- timeline ---------------------------------------------------------------------------
    def timeline(self, user: User) -> Iterator[Timed]:
        """All of ``user``'s events from the start of the run, forever (the caller stops)."""
        rate = self.config.sessions_per_user_hour * user.activity / MS_PER_HOUR
        t = self.config.start_ms + round(self.rng.expovariate(rate))
        while True:
            t = yield from self._session(user, t)
            t += 1 + round(self.rng.expovariate(rate))

    def _think(self, median_s: float) -> int:
        return lognormal_ms(self.rng, median_s, self.b.think_sigma, 1.0, 30 * median_s)

    def _affinity(self, user: User, item: Item) -> float:
        """1.0 for a category the user likes as much as the average; capped both ways."""
        return min(2.0, 0.5 + 0.5 * self._n_cat * user.taste[item.category_index])

    def _category(self, user: User) -> int:
        if self.rng.random() < self.b.explore_prob:
            return pick_index(self.rng, self._cat_cum)
        return pick_index(self.rng, user.taste_cum)

    def _popular_in(self, category: int) -> int:
        return pick(
            self.rng, self.catalog.by_category[category], self.catalog.by_category_cum[category]
        )

    def _click(
        self,
        user: User,
        sid: str,
        item: Item,
        action: Action,
        ts: int,
        campaign: str | None = None,
    ) -> Timed:
        event = ClickEvent(
            event_id=self.ids.event(),
            user_id=user.user_id,
            session_id=sid,
            item_id=item.item_id,
            category=item.category,
            action=action,
            ts=ts,
            campaign=campaign,
        )
        return ts, "clicks", event

    def _remember(self, user: User, index: int) -> None:
        if index not in user.saved:
            user.saved.append(index)
            if len(user.saved) > self.b.memory:
                del user.saved[0]

    def _entry(self, user: User) -> tuple[int, str]:
        """The session's first item and how the user got there (a mode below)."""
        rng, b = self.rng, self.b
        if self.deals and rng.random() < b.deal_prob:
            return self.deals[rng.randrange(len(self.deals))], DEAL
        if (user.saved or user.seen) and rng.random() < b.revisit_prob:
            if user.saved and (not user.seen or rng.random() < 0.6):
                return user.saved[rng.randrange(len(user.saved))], REVISIT
            back = min(int(rng.expovariate(0.4)), len(user.seen) - 1)  # recent items first
            return user.seen[-1 - back], REVISIT
        mode = SEARCH if rng.random() < b.search_prob else BROWSE
        return self._popular_in(self._category(user)), mode

    def _session(self, user: User, t: int) -> Generator[Timed, None, int]:
        rng, b, items = self.rng, self.b, self.catalog.items
        sid = self.ids.session()
        index, mode = self._entry(user)
        campaign = self.campaigns[index] if mode == DEAL else None
        cart: dict[int, str | None] = {}  # item index → campaign that sold it
        if mode == SEARCH:  # a search lands on its top result, which the user then views
            yield self._click(user, sid, items[index], Action.SEARCH, t)
            t += self._think(3.0)
        while True:
            item = items[index]
            yield self._click(user, sid, item, Action.VIEW, t, campaign)
            user.seen.append(index)
            if rng.random() < self._p_click(user, item, mode, campaign):
                t += self._think(3.0)
                yield self._click(user, sid, item, Action.CLICK, t, campaign)
                if rng.random() < b.wishlist_prob:
                    t += self._think(2.0)
                    yield self._click(user, sid, item, Action.WISHLIST, t, campaign)
                    self._remember(user, index)
                elif index not in cart and rng.random() < self._p_cart(user, item, mode, campaign):
                    t += self._think(20.0)
                    yield self._click(user, sid, item, Action.ADD_TO_CART, t, campaign)
                    cart[index] = campaign
            if rng.random() >= b.continue_prob:
                break
            t += self._think(b.think_median_s)
            campaign, mode = None, BROWSE  # only the entry item is seen through its mode
            if rng.random() < b.related_prob:
                near = self.catalog.neighbours[index]
                index = pick(rng, near, self.catalog.neighbours_cum[index])
            else:
                index = self._popular_in(self._category(user))
                if rng.random() < b.search_prob:
                    yield self._click(user, sid, items[index], Action.SEARCH, t)
                    t += self._think(3.0)
        return (yield from self._checkout(user, sid, cart, t))

    def _p_click(self, user: User, item: Item, mode: str, campaign: str | None) -> float:
        if campaign is not None:
            return self.b.deal_click_prob
        boost = self.b.revisit_boost if mode == REVISIT else 1.0
        quality = self.perceived(item)
        return self.b.click_prob * self._affinity(user, item) * (0.6 + 0.8 * quality) * boost

    def _p_cart(self, user: User, item: Item, mode: str, campaign: str | None) -> float:
        quality = self.perceived(item)
        if campaign is not None:  # a deal sells on its price, until its reviews turn
            return self.b.deal_cart_prob * min(1.0, quality / max(item.quality, 0.05))
        boost = self.b.revisit_boost if mode == REVISIT else 1.0
        median = self.catalog.median_price[item.category_index]
        price_factor = min(3.0, max(0.2, (median / item.price) ** user.price_sensitivity))
        return (
            self.b.cart_prob
            * price_factor
            * (0.4 + 1.2 * quality)
            * self._affinity(user, item)
            * boost
        )

    def _checkout(
        self, user: User, sid: str, cart: dict[int, str | None], t: int
    ) -> Generator[Timed, None, int]:
        rng, b, items = self.rng, self.b, self.catalog.items
        for index in list(cart):
            if rng.random() < b.remove_prob:
                t += self._think(5.0)
                yield self._click(user, sid, items[index], Action.REMOVE_FROM_CART, t)
                del cart[index]
        for index in list(cart):  # reading the latest reviews before paying
            put_off = self.put_off(items[index])
            if put_off <= 0.0:
                continue
            reading = self._reading
            if reading.random() < b.review_check_prob and reading.random() < put_off:
                t += self._think(20.0)
                yield self._click(user, sid, items[index], Action.REMOVE_FROM_CART, t)
                del cart[index]
        if not cart:
            return t
        t += self._think(30.0)
        if any(campaign is not None for campaign in cart.values()):
            p_checkout = b.deal_checkout_prob
        else:
            p_checkout = b.checkout_prob
        if rng.random() >= p_checkout:
            for index in cart:
                self._remember(user, index)
            return t
        order_id = self.ids.order()
        for index, campaign in cart.items():
            item = items[index]
            quantity = 1
            while quantity < b.max_quantity and rng.random() < 0.12:
                quantity += 1
            event = PurchaseEvent(
                event_id=self.ids.event(),
                order_id=order_id,
                user_id=user.user_id,
                item_id=item.item_id,
                category=item.category,
                price=item.price,
                quantity=quantity,
                ts=t,
                campaign=campaign,
            )
            yield t, "purchases", event
            user.bought.add(index)
            if index in user.saved:
                user.saved.remove(index)
            self._maybe_review(user, item, t)
        return t

    def _maybe_review(self, user: User, item: Item, purchased_ms: int) -> None:
        """Decide now whether (and when) this purchase gets reviewed; hand it to the merge."""
        rng, config = self.rng, self.config
        ts = purchased_ms + lognormal_ms(rng, config.review_delay_median_s, 0.8, 60.0, 6 * 3600.0)
        rate = config.review_rate
        if self.incidents.affected(item.index, ts):
            rate = min(0.95, rate * config.incident_review_boost)
        if rng.random() >= rate or (self._end_ms is not None and ts >= self._end_ms):
            return
        quality = self.incidents.quality(item.index, item.quality, ts)
        rating = self.reviews.rating(quality)
        review = ReviewEvent(
            event_id=self.ids.event(),
            review_id=self.ids.review(),
            user_id=user.user_id,
            item_id=item.item_id,
            category=item.category,
            rating=rating,
            text=self.reviews.text(rating, quality),
            lang="zh",
            ts=ts,
        )
        self.schedule(ts, "reviews", review)
