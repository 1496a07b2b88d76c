"""The native replica and ranking give exactly the Python reference's lists and scores.

``ecomstream.recommend.native`` promises identical output, not "close": the worker's
lists must not depend on whether the extension is built. So every comparison here is
``==`` on the ranked items (ids, categories, rounded scores, reasons), over a
simulated shop replayed through the stream's own pipeline, under several configs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ecomstream.events import ReviewEvent
from ecomstream.profiles.config import CARTED
from ecomstream.profiles.profile import UserProfile
from ecomstream.profiles.scores import ReviewScore, rating_as_score
from ecomstream.recommend import native
from ecomstream.recommend.items import ALL, ItemDelta, ItemIndex, encode_item
from ecomstream.recommend.pipeline import PipelineConfig, process_events
from ecomstream.recommend.recommender import RecommenderConfig, rank, recommend
from ecomstream.simulator.config import IncidentSpec, SimConfig
from ecomstream.simulator.shop import generate
from tests.unit.profiles.events import HOUR, T0

DEFAULT = RecommenderConfig()
CONFIGS = {
    "default": DEFAULT,
    "no sentiment": replace(DEFAULT, use_sentiment=False),
    "praise boosts, nothing spared": replace(
        DEFAULT, sentiment_ceiling=2.0, sentiment_spares=None, sentiment_exponent=1.5
    ),
    "capped categories, k 5": replace(DEFAULT, k=5, max_per_category=2, diversity=0.5),
    "no diversity, latest seeds only": replace(DEFAULT, diversity=1.0, held_seeds=None),
    "shop fallback, no recency": replace(DEFAULT, w_recent=0.0, w_shop=0.5, k=30),
    "no popularity, no covisitation": replace(DEFAULT, w_popular=0.0, w_covis=0.0),
    "never exclude": replace(DEFAULT, exclude_bought_s=0.0, seeds=3),
}


def mirror(owner: ItemIndex) -> tuple[ItemIndex, native.NativeItemIndex]:
    """A Python and a native replica of ``owner``, fed the same changelog values in order.

    Replicas, not the owner, are compared: the shop-wide sentiment prior is a float sum
    whose last bit depends on the order records arrive in, and every replica of a
    worker reads the same changelog in the same order.
    """
    python, rust = ItemIndex(owner.config), native.NativeItemIndex(owner.config)
    for record in owner.records.values():
        raw = encode_item(record)
        python.put_encoded(raw)
        rust.put_encoded(raw)
    return python, rust


def replay(seed: int, events: int) -> Iterator[tuple[ItemIndex, dict[str, UserProfile], int]]:
    """After each batch: the owner's item index, every profile so far, the batch's newest ts.

    Reviews become item sentiment (ratings as a stand-in for scores); the simulator's
    incident item gets an open incident flag once its first bad review lands.
    """
    config = SimConfig(
        seed=seed,
        users=400,
        items=120,
        events=events,
        duration_s=None,
        review_delay_median_s=30.0,
        incidents=(IncidentSpec("i0003", 60.0),),
    )
    index = ItemIndex()
    profiles: dict[str, UserProfile] = {}
    batch: list[tuple[object, str, int, int]] = []
    bad = 0
    for sim in generate(config):
        batch.append((sim.event, sim.topic, 0, -1))
        event = sim.event
        if isinstance(event, ReviewEvent):
            e = event
            score = rating_as_score(e.review_id, e.user_id, e.item_id, e.category, e.rating, e.ts)
            if score is not None:
                index.apply_review_score(score)
                bad += event.item_id == "i0003" and score.p_negative > 0.5
                if bad == 3:  # demoted for its reviews first, then for the incident
                    index.apply_alert(event.item_id, True, event.ts)
        if len(batch) == 200:
            yield from _apply(batch, index, profiles)
            batch = []
    yield from _apply(batch, index, profiles)


def _apply(
    batch: list[tuple[object, str, int, int]], index: ItemIndex, profiles: dict[str, UserProfile]
) -> Iterator[tuple[ItemIndex, dict[str, UserProfile], int]]:
    if not batch:
        return
    newest = max(e.ts for e, *_ in batch)  # type: ignore[attr-defined]
    out = process_events(batch, profiles.get, PipelineConfig(debounce=False), newest)  # type: ignore[arg-type]
    profiles.update(out.profiles)
    for delta in out.item_deltas.values():
        index.apply_delta(delta)
    yield index, profiles, newest


@pytest.mark.skipif(not native.available(), reason="ecomstream_native not built")
@pytest.mark.parametrize("seed", [1, 2])
def test_every_users_list_is_identical_to_the_python_reference(seed: int) -> None:
    compared = demoted = incident = praised = 0
    for step, (owner, profiles, now) in enumerate(replay(seed, 20_000)):
        if step % 5:
            continue
        index, copy = mirror(owner)
        for name, config in CONFIGS.items():
            for profile in list(profiles.values())[::7]:
                expected = rank(profile, index, now, config)
                got = rank(profile, copy, now, config)
                assert got == expected, (name, profile.user_id, now)
                compared += 1
                reasons = " ".join(r for item in expected for r in item.reasons)
                demoted += "negative reviews" in reasons
                incident += "open quality incident" in reasons
                praised += "well reviewed" in reasons
        assert copy.sentiment_prior(now) == index.sentiment_prior(now)
        for category in {r.category for r in index.records.values()} | {ALL}:
            assert copy.top(category, 50) == index.top(category, 50)
    # The comparison covered every kind of sentiment reason, not only plain lists.
    assert compared > 5_000 and demoted and incident and praised


@pytest.mark.skipif(not native.available(), reason="ecomstream_native not built")
def test_records_round_trip_through_the_native_replica() -> None:
    index, copy = mirror(next(i for step, (i, _, _) in enumerate(replay(3, 3_000)) if step == 10))
    assert len(copy) == len(index)
    for item_id, record in index.records.items():
        assert copy.get(item_id) == record
    assert copy.get("no such item") is None


@pytest.mark.skipif(not native.available(), reason="ecomstream_native not built")
def test_landmark_rescales_give_the_same_values() -> None:
    """Popularity and sentiment 45 half-lives apart force every rescale path."""
    index = ItemIndex()
    day = 24 * HOUR
    for n, ts in enumerate((T0, T0 + 45 * day, T0 + 90 * day)):
        for i in range(60):  # more than 2 x category_top: eviction and floor too
            index.apply_delta(
                ItemDelta(
                    f"i{i}",
                    f"c{i % 3}",
                    lm=ts,
                    pop=1.0 + (i * 7 + n) % 11,
                    nb={f"i{(i + 1) % 60}": 1.0 + i % 4},
                    nb_total=2.0 + i % 4,
                )
            )
            if i % 5 == 0:
                index.apply_review_score(
                    ReviewScore(
                        f"r{n}-{i}",
                        "u",
                        f"i{i}",
                        f"c{i % 3}",
                        0.9 if i % 2 else 0.1,
                        0.1 if i % 2 else 0.9,
                        ts + i * 60_000,
                    )
                )
        replica, copy = mirror(index)
        p = UserProfile("u")
        p.cats, p.lm, p.ts = {"c0": 3.0, "c1": 1.0}, ts, ts
        p.seen = {"i3": [ts - HOUR, CARTED], "i10": [ts, 1], "i25": [ts, 2]}
        p.bought = {"i11": ts}
        for config in CONFIGS.values():
            assert rank(p, copy, ts, config) == rank(p, replica, ts, config)
        assert copy.sentiment_prior(ts) == replica.sentiment_prior(ts)
        assert copy.top(ALL, 50) == replica.top(ALL, 50)


@pytest.mark.skipif(not native.available(), reason="ecomstream_native not built")
def test_an_update_is_byte_identical() -> None:
    owner, profiles, _ = next(s for step, s in enumerate(replay(4, 3_000)) if step == 12)
    index, copy = mirror(owner)
    for profile in list(profiles.values())[:50]:
        a = recommend(profile, index, "e1", profile.ts).to_json()
        assert recommend(profile, copy, "e1", profile.ts).to_json() == a


@pytest.mark.skipif(not native.available(), reason="ecomstream_native not built")
def test_a_corrupt_changelog_value_is_refused_with_the_reason() -> None:
    copy = native.NativeItemIndex()
    with pytest.raises(ValueError, match="unknown item record version 7"):
        copy.put_encoded(b'{"v":7,"i":"i1","c":"x","l":1,"p":1.0}')
    with pytest.raises(ValueError):
        copy.put_encoded(b"not json")
    assert len(copy) == 0


def test_the_extension_is_built_where_the_tests_require_it() -> None:
    """``make test`` sets ECOMSTREAM_NATIVE=on, so a broken build fails here, never skips."""
    if os.environ.get("ECOMSTREAM_NATIVE") == "on":
        assert native.available()


def test_the_switch_reads_auto_on_and_off() -> None:
    assert native.wanted("auto") is native.available()
    assert native.wanted("off") is False
    assert isinstance(native.replica_index(choice="off"), ItemIndex)
    if native.available():
        assert isinstance(native.replica_index(choice="on"), native.NativeItemIndex)
    else:
        with pytest.raises(RuntimeError, match="not built"):
            native.wanted("on")
