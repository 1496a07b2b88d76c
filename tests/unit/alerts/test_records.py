from __future__ import annotations

import orjson
import pytest

from ecomstream.alerts import (
    AlertConfig,
    ScoredReview,
    SentimentDetector,
    decode_alert,
    encode_alert,
    episode_id,
)

from .helpers import MIN, T0, review


def _alert(config: AlertConfig | None = None) -> bytes:
    detector = SentimentDetector(config or AlertConfig())
    state = detector.new_state("i42", "toys")
    for k in range(8):
        alerts = detector.observe(
            state,
            review(k, T0 + k * MIN, negative=True, item="i42", category="toys", text="坏了 " * 3),
            prior=0.1,
        ).alerts
        if alerts:
            return encode_alert(alerts[0])
    raise AssertionError("no alert")


def test_alert_json_carries_the_contract_fields() -> None:
    value = orjson.loads(_alert())
    assert value["alert_id"] == f"{value['episode_id']}:firing:{value['severity']}"
    assert value["episode_id"] == episode_id("i42", value["episode_start"])
    assert value["item_id"] == "i42" and value["category"] == "toys"
    assert value["state"] == "firing" and value["reason"] == "threshold"
    assert set(value["window"]) == {"start", "end"}
    assert value["counts"] == {"reviews": 6, "negative": 6, "positive": 0}
    assert set(value["baseline"]) == {"negative_share", "item_reviews", "category_prior"}
    assert value["score"]["method"] == "wilson"
    assert value["score"]["lower"] > value["score"]["threshold"]
    assert 0 < value["score"]["p_value"] < 1e-4
    assert value["evidence"][0]["excerpt"] == "坏了 坏了 坏了"


def test_alert_codec_roundtrip() -> None:
    raw = _alert()
    assert encode_alert(decode_alert(raw)) == raw


def test_an_llr_alert_says_so_and_roundtrips() -> None:
    raw = _alert(AlertConfig(fire_test="llr", llr_fire=3.0))
    score = orjson.loads(raw)["score"]
    assert score["method"] == "llr" and score["llr"] >= 3.0
    assert decode_alert(raw).llr == score["llr"]
    assert encode_alert(decode_alert(raw)) == raw


def test_scored_review_from_a_review_scores_value() -> None:
    value = {
        "review_id": "r1",
        "event_id": "e1",
        "user_id": "u1",
        "item_id": "i1",
        "category": "home",
        "rating": 2,
        "label": "negative",
        "probabilities": {"negative": 0.8, "positive": 0.2},
        "model": "m",
        "version": "1",
        "ts": T0,
        "scored_at": T0 + 5,
    }
    r = ScoredReview.from_json(orjson.dumps(value))
    assert (r.negative, r.p_negative, r.rating, r.excerpt, r.ts) == (True, 0.8, 2, None, T0)
    only_positive = {**value, "label": "positive", "probabilities": {"positive": 0.75}}
    assert ScoredReview.from_dict(only_positive).p_negative == pytest.approx(0.25)


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"review_id":"r","item_id":"i","ts":1}',
        b'{"review_id":"r","item_id":"i","ts":"x","label":"negative"}',
        b'{"review_id":"r","item_id":"i","ts":1,"label":"meh"}',
    ],
)
def test_unusable_scores_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        ScoredReview.from_json(raw)
