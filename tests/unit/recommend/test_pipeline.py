from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from ecomstream.events import Event
from ecomstream.ingest import Accepted
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.profiles.config import ProfileConfig
from ecomstream.profiles.profile import UserProfile
from ecomstream.recommend.items import ItemConfig, encode_delta
from ecomstream.recommend.pipeline import PipelineConfig, ProfileCache, process_batch
from tests.unit.profiles.events import HOUR, T0, accepted, click, purchase, review

CFG = PipelineConfig(
    profile=ProfileConfig(debounce_s=30, session_items=3),
    items=ItemConfig(half_life_s=3600),
)


def batch(*events):  # type: ignore[no-untyped-def]
    return [accepted(e, offset) for offset, e in enumerate(events)]


def test_each_user_is_loaded_once_and_encoded_once() -> None:
    loads: list[str] = []

    def load(uid: str) -> None:
        loads.append(uid)

    out = process_batch(
        batch(click(user="a"), click(user="b"), click(user="a", item="i2")), load, CFG
    )
    assert loads == ["a", "b"]
    assert set(out.encoded_profiles(CFG.profile)) == {"a", "b"}
    assert out.applied == 3 and out.duplicates == 0


def test_profiles_come_from_bytes_objects_or_nothing() -> None:
    stored = UserProfile("a")
    stored.n_orders = stored.n_lines = 7
    out = process_batch(batch(click(user="a")), lambda uid: encode_profile(stored), CFG)
    assert out.profiles["a"].n_orders == 7
    out = process_batch(batch(click(user="a")), lambda uid: stored, CFG)
    assert out.profiles["a"] is stored


def test_item_deltas_carry_popularity_and_session_pairs() -> None:
    out = process_batch(
        batch(
            click(item="a", ts=T0),
            click(item="b", ts=T0 + HOUR),
            click(item="b", action="add_to_cart", ts=T0 + HOUR),
            click(item="c", ts=T0 + HOUR),
            purchase(item="c", price=12.5, ts=T0 + HOUR),
        ),
        lambda uid: None,
        CFG,
    )
    d = out.item_deltas
    assert d["a"].pop == pytest.approx(0.5)  # an hour older than the batch landmark
    assert d["b"].pop == pytest.approx(1.0 + 3.0)
    assert d["c"].pop == pytest.approx(1.0 + 5.0) and d["c"].price == 12.5
    # b met a (distance 1); c met b (distance 1) and a (distance 2: half weight)
    assert d["b"].nb == {"a": 1.0, "c": 1.0}
    assert d["c"].nb == {"b": 1.0, "a": 0.5}
    assert d["a"].nb == {"b": 1.0, "c": 0.5}
    assert d["c"].nb_total == pytest.approx(1.5)
    assert d["a"].category == "books"


def test_redelivered_messages_are_skipped() -> None:
    store: dict[str, bytes] = {}
    events = batch(click(item="a"), click(item="b"), purchase(item="a"))
    for _ in range(2):
        out = process_batch(events, store.get, CFG)
        store.update(out.encoded_profiles(CFG.profile))
    assert out.duplicates == 3 and out.applied == 0 and not out.item_deltas
    p = decode_profile(store["u1"], CFG.profile)
    assert p.n_lines == 1 and p.window_counts("1h", config=CFG.profile)["view"] == 2


def test_debounce_in_and_across_batches() -> None:
    profiles: dict[str, UserProfile] = {}

    def run(*events):  # type: ignore[no-untyped-def]
        out = process_batch([accepted(e, -1) for e in events], profiles.get, CFG)
        profiles.update(out.profiles)
        return [(t.event_id, t.purchase) for t in out.triggers]

    burst = [click(item=f"i{i}", ts=T0 + i * 1000) for i in range(5)]
    assert run(*burst) == [(burst[-1].event_id, False)]  # one update per burst, newest event
    assert run(click(item="x", ts=T0 + 10_000), click(item="y", ts=T0 + 11_000)) == []
    late = [click(item="p", ts=T0 + 40_000), click(item="q", ts=T0 + 41_000)]
    assert run(*late) == [(late[-1].event_id, False)]
    buy = purchase(item="q", ts=T0 + 42_000)
    assert run(click(item="z", ts=T0 + 43_000), buy) == [(buy.event_id, True)]


def test_without_debounce_every_touched_user_triggers() -> None:
    cfg = PipelineConfig(profile=CFG.profile, items=CFG.items, debounce=False)
    out = process_batch(batch(click(user="a"), review(user="b")), lambda uid: None, cfg)
    assert sorted(t.user_id for t in out.triggers) == ["a", "b"]


def test_empty_batch() -> None:
    out = process_batch([], lambda uid: None, CFG)
    assert not out.profiles and not out.triggers and not out.item_deltas


def random_batches(seed: int, n_batches: int, size: int) -> list[list[Accepted]]:
    rng = random.Random(seed)
    out, offset = [], 0
    for b in range(n_batches):
        chunk: list[Accepted] = []
        for _ in range(size):
            user = f"u{rng.randrange(8)}"
            ts = T0 + (b * size + len(chunk)) * 7_000 + rng.randrange(-20_000, 20_000)
            item = f"i{rng.randrange(30)}"
            roll = rng.random()
            if roll < 0.9:
                e: Event = click(
                    item=item,
                    category=f"c{int(item[1:]) % 4}",
                    ts=ts,
                    user=user,
                    session=f"{user}-{(b * size + len(chunk)) // 40}",
                    action=rng.choice(["view", "view", "click", "add_to_cart"]),
                )
            elif roll < 0.97:
                e = purchase(item=item, ts=ts, user=user, order=f"o{b}-{user}")
            else:
                e = review(item=item, rating=rng.randint(1, 5), ts=ts, user=user)
            chunk.append(accepted(e, offset))
            offset += 1
        out.append(chunk)
    return out


def test_bytes_store_cached_objects_and_plain_objects_agree() -> None:
    """The stream (table bytes, optionally a cache) and the replay (objects) compute the same."""
    runs = []
    batches = random_batches(11, 12, 25)
    for how in ("bytes", "cache", "objects"):
        table: dict[str, bytes] = {}
        objects: dict[str, UserProfile] = {}
        cache = ProfileCache(maxsize=3)  # smaller than the user count: evictions happen
        loaders: dict[str, Callable[[str], bytes | UserProfile | None]] = {
            "bytes": table.get,
            "cache": cache.loader(table.get),
            "objects": objects.get,
        }
        load = loaders[how]
        trace = []
        for chunk in batches:
            out = process_batch(chunk, load, CFG)
            encoded = out.encoded_profiles(CFG.profile)
            table.update(encoded)
            cache.store(out.profiles)
            objects.update(out.profiles)
            trace.append(
                (
                    [(t.user_id, t.event_id) for t in out.triggers],
                    encoded,
                    {k: encode_delta(d) for k, d in out.item_deltas.items()},
                )
            )
        runs.append(trace)
    assert runs[0] == runs[1] == runs[2]


def test_profile_cache_is_an_lru_and_counts_hits() -> None:
    cache = ProfileCache(maxsize=2)
    a, b, c = UserProfile("a"), UserProfile("b"), UserProfile("c")
    cache.store({"a": a, "b": b})
    cache.store({"a": a})  # a is now the most recent
    cache.store({"c": c})  # evicts b
    load = cache.loader(lambda uid: b"fallback")
    assert load("a") is a and load("c") is c and load("b") == b"fallback"
    assert (cache.hits, cache.misses) == (2, 1)
    cache.clear()
    assert len(cache) == 0
