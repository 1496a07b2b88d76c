from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest

from ecomstream.alerts import AlertConfig
from ecomstream.alerts.evaluate import evaluate_alerts, load_scored, rating_label

from .helpers import MIN, T0, stream


def _recording(tmp_path: Path) -> tuple[Path, dict]:
    """A small 'simulator' recording: 4 items, i3's quality collapses at +90 min."""
    lines = []
    n = 0
    for item in ("i1", "i2", "i3", "i4"):
        for r in stream(0.1, count=240, every_ms=45_000, item=item, seed=5):
            negative = r.negative or (item == "i3" and r.ts >= T0 + 90 * MIN)
            rating = 1 if negative else 5
            value = {
                "event_id": f"e{n}",
                "review_id": r.review_id,
                "user_id": "u1",
                "item_id": item,
                "category": "home",
                "rating": rating,
                "text": "差评" if negative else "好评",
                "lang": "zh",
                "ts": r.ts,
            }
            lines.append((r.ts, n, {"topic": "reviews", "key": "u1", "value": value}))
            n += 1
            lines.append((r.ts, n, {"topic": "clicks", "key": "u1", "value": {"ts": r.ts}}))
            n += 1
    path = tmp_path / "run.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(rec) + b"\n" for _, _, rec in sorted(lines, key=lambda x: (x[0], x[1]))
        )
    )
    truth = {
        "format": "ecomstream-sim-truth/1",
        "start_ts": T0,
        "end_ts": T0 + 180 * MIN,
        "incidents": [
            {"item_id": "i3", "category": "home", "start_ts": T0 + 90 * MIN, "end_ts": None}
        ],
    }
    return path, truth


def test_rating_stand_in_is_seeded_and_order_free() -> None:
    assert rating_label("r9", 2, 0)[0] is True and rating_label("r9", 4, 0)[0] is False
    coins = [rating_label(f"r{i}", 3, 7)[0] for i in range(400)]
    assert coins == [rating_label(f"r{i}", 3, 7)[0] for i in range(400)]
    assert 150 < sum(coins) < 250


def test_load_scored_uses_ratings_without_scores_and_scores_when_present(tmp_path: Path) -> None:
    path, _ = _recording(tmp_path)
    reviews, source = load_scored(path)
    assert source == "rating" and len(reviews) == 960
    scored = tmp_path / "scored.jsonl"
    value = {
        "review_id": reviews[0].review_id,
        "item_id": "i1",
        "category": "home",
        "ts": reviews[0].ts,
        "label": "negative",
        "probabilities": {"negative": 0.7},
    }
    scored.write_bytes(
        path.read_bytes().splitlines(keepends=True)[0]
        + orjson.dumps({"topic": "review-scores", "key": "i1", "value": value})
        + b"\n"
    )
    got, source = load_scored(scored)
    assert source == "scorer" and len(got) == 1
    assert got[0].negative and got[0].excerpt is not None  # text joined from the review


def test_evaluate_alerts_scores_a_recording_and_writes_the_report(tmp_path: Path) -> None:
    path, truth = _recording(tmp_path)
    report = evaluate_alerts(path, truth, tmp_path / "out", config=AlertConfig())
    summary = report["summary"]
    assert summary["incidents"] == 1 and summary["detected"] == 1
    assert summary["precision"] == 1.0 and summary["recall"] == 1.0
    assert 0 < summary["median_delay_min"] <= 30
    for name in (
        "alerts-report.json",
        "alerts-report.md",
        "alerts-timeline.png",
        "run.alerts.jsonl",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "rating" in (tmp_path / "out" / "alerts-report.md").read_text()


def test_stationary_run_keeps_item_rates_and_has_no_incidents() -> None:
    from ecomstream.alerts.evaluate import RunInput, stationary_run

    reviews = [r for item in ("i1", "i2") for r in stream(0.1, count=60, item=item)]
    reviews.sort(key=lambda r: r.ts)
    truth = {
        "start_ts": T0,
        "incidents": [],
        "catalog": {
            "i1": {"category": "home", "quality": 0.9},
            "i2": {"category": "toys", "quality": 0.3},
        },
    }
    run = stationary_run(RunInput("c", reviews, truth), hours=10, scale=2.0, seed=1)
    got, _ = load_scored(run.source)
    assert 2000 < len(got) < 2800  # 2 items × 60/h × 2 × 10 h
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(got))
    share = {i: sum(r.negative for r in got if r.item_id == i) / 1200 for i in ("i1", "i2")}
    assert share["i1"] < 0.05 < 0.5 < share["i2"]
    assert run.truth["incidents"] == []  # type: ignore[index]


def test_preset_and_settings_make_the_config_and_unknown_fields_are_refused() -> None:
    from ecomstream.alerts import QUICK_MODEL_PRESET
    from ecomstream.alerts.evaluate import config_from_args

    assert config_from_args("quick", []) == AlertConfig.from_preset(QUICK_MODEL_PRESET)
    assert config_from_args("quick", ["min_reviews=10"]).min_reviews == 10
    assert config_from_args(None, ["fire_test=llr"]).fire_test == "llr"
    with pytest.raises(ValueError, match="z_fir"):
        config_from_args(None, ["z_fir=2"])
