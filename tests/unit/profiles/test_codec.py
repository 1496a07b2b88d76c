from __future__ import annotations

import random

import orjson
import pytest

from ecomstream.events import Event
from ecomstream.profiles.change import mark_updated
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.profiles.config import ProfileConfig
from ecomstream.profiles.profile import UserProfile, apply_event, apply_review_score
from ecomstream.profiles.scores import ReviewScore
from tests.unit.profiles.events import MINUTE, T0, click, purchase, review

ACTIONS = ("view", "view", "view", "click", "add_to_cart", "remove_from_cart", "search", "wishlist")


def random_events(seed: int, n: int) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(n):
        ts = T0 + i * MINUTE // 2 + rng.randrange(-5 * MINUTE, 5 * MINUTE)  # some out of order
        item, cat = f"i{rng.randrange(60):04d}", f"c{rng.randrange(6)}"
        roll = rng.random()
        if roll < 0.9:
            events.append(click(item, cat, rng.choice(ACTIONS), ts, session=f"s{i // 12}"))
        elif roll < 0.97:
            events.append(purchase(item, cat, ts, order=f"o{i // 3}", price=rng.uniform(5, 900)))
        else:
            events.append(review(item, cat, rng.randint(1, 5), ts))
    return events


def typical_profile(seed: int = 1, n: int = 120) -> UserProfile:
    p = UserProfile("u0001234")
    for e in random_events(seed, n):
        apply_event(p, e)
    apply_review_score(p, ReviewScore("r", "u0001234", "i1", "c1", 0.25, 0.75, T0))
    p.offsets = {"clicks": [3, 123456], "purchases": [3, 4567]}
    mark_updated(p, p.ts)
    return p


def test_round_trip_is_lossless_for_a_busy_profile() -> None:
    p = typical_profile()
    blob = encode_profile(p)
    assert decode_profile(blob) == p
    assert encode_profile(decode_profile(blob)) == blob


def test_pending_purchase_and_cart_change_survive_a_round_trip() -> None:
    p = UserProfile("u")
    p.pending_buy = p.pending_cart = True
    q = decode_profile(encode_profile(p))
    assert q.pending_buy and q.pending_cart
    p.pending_buy = False
    q = decode_profile(encode_profile(p))
    assert not q.pending_buy and q.pending_cart
    # Written before cart changes were recorded: the flag was 0 or 1 (a purchase).
    old = decode_profile(b'{"v":1,"u":"u","t":5,"l":0,"e":[5,[],[],1]}')
    assert old.pending_buy and not old.pending_cart


def test_round_trip_of_an_empty_profile() -> None:
    p = UserProfile("u")
    assert decode_profile(encode_profile(p)) == p
    assert encode_profile(p) == b'{"v":1,"u":"u","t":0,"l":0}'


def test_updating_a_decoded_profile_equals_updating_the_original() -> None:
    events = random_events(7, 200)
    kept, stored = UserProfile("u"), encode_profile(UserProfile("u"))
    for i in range(0, 200, 17):  # batches of 17: decode, apply, encode — as the stream does
        p = decode_profile(stored)
        for e in events[i : i + 17]:
            apply_event(kept, e)
            apply_event(p, e)
        stored = encode_profile(p)
    assert decode_profile(stored) == kept


def test_the_layout_is_compact() -> None:
    blob = encode_profile(typical_profile())
    assert len(blob) < 2_000
    d = orjson.loads(blob)
    assert set(d) <= {
        "v",
        "u",
        "t",
        "l",
        "c",
        "s",
        "b",
        "ss",
        "si",
        "st",
        "w",
        "o",
        "p",
        "r",
        "e",
        "k",
    }
    assert all(len(row) <= 9 for rows in d["w"].values() for row in rows)


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        decode_profile(b'{"v":99,"u":"u","t":0,"l":0}')


def test_windows_of_another_config_are_read_by_name() -> None:
    p = UserProfile("u")
    apply_event(p, click())
    other = ProfileConfig(windows=ProfileConfig().windows[1:])  # only "24h"
    q = decode_profile(encode_profile(p), other)
    assert q.window_counts("24h", config=other)["view"] == 1
