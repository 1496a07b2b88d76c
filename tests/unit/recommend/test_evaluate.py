from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from ecomstream.events import Event
from ecomstream.recommend.evaluate import (
    EvalConfig,
    Evaluated,
    evaluate_recommendations,
    exposure_metrics,
    read_recording,
    replay,
    run_evaluation,
)
from tests.unit.profiles.events import MINUTE, T0, click, purchase, review


def line(topic: str, key: str, value: dict[str, Any] | Event) -> bytes:
    body = value if isinstance(value, dict) else orjson.loads(value.to_json())
    return orjson.dumps({"topic": topic, "key": key, "value": body}) + b"\n"


@pytest.fixture
def recording(tmp_path: Path) -> tuple[Path, Path]:
    """Two shoppers who look at a and b together; u2 buys b, then u3 buys a after viewing it."""
    events: list[tuple[str, Event]] = []
    t = T0
    for user, session in (("u1", "s1"), ("u2", "s2")):
        for item in ("a", "b"):
            events.append(("clicks", click(item=item, user=user, session=session, ts=t)))
            t += MINUTE
    events.append(("clicks", click(item="b", action="add_to_cart", user="u2", session="s2", ts=t)))
    buy_b = purchase(item="b", user="u2", order="o1", ts=t + MINUTE)
    events.append(("purchases", buy_b))
    events.append(("reviews", review(item="b", rating=1, user="u2", ts=t + 2 * MINUTE)))
    events.append(("clicks", click(item="a", user="u3", session="s3", ts=t + 3 * MINUTE)))
    buy_a = purchase(item="a", user="u3", order="o2", ts=t + 4 * MINUTE)
    events.append(("purchases", buy_a))
    jsonl = tmp_path / "shop.jsonl"
    with jsonl.open("wb") as f:
        for topic, e in reversed(events):  # the replay must sort by event time itself
            f.write(line(topic, e.user_id, e))
        f.write(line("clicks", "u9", {"event_id": 3}))  # invalid: refused like the stream does
    truth = {
        "first_event_ts": T0,
        "last_event_ts": t + 4 * MINUTE,
        "incidents": [],
        "purchases": {
            "u2": [{"ts": buy_b.ts, "item_id": "b", "order_id": "o1"}],
            "u3": [{"ts": buy_a.ts, "item_id": "a", "order_id": "o2"}],
        },
    }
    truth_path = tmp_path / "shop.truth.json"
    truth_path.write_bytes(orjson.dumps(truth))
    return jsonl, truth_path


def test_replay_scores_each_purchase_with_the_state_just_before(
    recording: tuple[Path, Path],
) -> None:
    rec = read_recording(recording[0])
    assert rec.rejected == {"wrong_type": 1}
    result = replay(rec, EvalConfig(k=10))
    assert [e.item_id for e in result.evaluated] == ["b", "a"]
    first = result.evaluated[0]
    assert "b" in first.fresh["sentiment"][:2]  # in u2's cart
    assert [e.in_cart for e in result.evaluated] == [True, False]  # u3 only viewed a
    assert "b" in result.evaluated[1].fresh["sentiment"]  # u2's purchase is not u3's
    assert result.sentiment_source == "ratings"


def test_a_purchase_of_an_item_bought_within_the_exclusion_window_is_marked(
    tmp_path: Path,
) -> None:
    first = purchase(item="a", user="u1", order="o1", ts=T0)
    again = purchase(item="a", user="u1", order="o2", ts=T0 + 60 * MINUTE)
    jsonl = tmp_path / "rebuy.jsonl"
    jsonl.write_bytes(line("purchases", "u1", first) + line("purchases", "u1", again))
    result = replay(read_recording(jsonl), EvalConfig(k=10))
    assert [e.rebought for e in result.evaluated] == [False, True]
    assert "a" not in result.evaluated[1].fresh["no_sentiment"]  # the rule hides it


def test_review_scores_in_the_recording_replace_ratings(
    tmp_path: Path, recording: tuple[Path, Path]
) -> None:
    jsonl = tmp_path / "scored.jsonl"
    score = {
        "review_id": "r",
        "user_id": "u2",
        "item_id": "b",
        "category": "books",
        "label": "negative",
        "probabilities": {"negative": 0.9, "positive": 0.1},
        "model": "m",
        "version": "1",
        "ts": T0 + 6 * MINUTE,
    }
    alert = {"item_id": "b", "state": "firing", "ts": T0 + 6 * MINUTE}
    jsonl.write_bytes(
        recording[0].read_bytes()
        + line("review-scores", "b", score)
        + line("sentiment-alerts", "b", alert)
    )
    result = replay(read_recording(jsonl), EvalConfig(k=10))
    assert result.sentiment_source == "scores"
    record = result.items.get("b")
    assert record is not None and record.reviews == 1 and record.incident


def test_report_files_and_command(recording: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = run_evaluation(recording[0], recording[1], out, EvalConfig(k=5))
    assert {p.name for p in out.iterdir()} == {"report.md", "report.json", "report.png"}
    assert report["purchases_scored"] == 2
    assert report["truth_purchase_lines_missing_from_recording"] == 0
    assert report["fresh_misses"]["purchases_in_cart"] == 1
    assert report["fresh_misses"]["b_misses"] >= report["fresh_misses"]["b_misses_in_cart"]
    assert set(report["fresh"]) == {"popularity", "no_sentiment", "sentiment"}
    markdown = (out / "report.md").read_text()
    assert "| (c) ecomstream + sentiment |" in markdown
    assert report["paired"]["fresh"]["lines"] == 2
    assert report["checks"]["c_beats_b"] is False  # two lines cannot show an effect
    assert "(c) beats (b) on the same purchase lines" in markdown
    assert "ranked higher in" in markdown and "sign test p=" in markdown
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    result = CliRunner().invoke(
        evaluate_recommendations, [str(recording[0]), str(recording[1]), str(tmp_path / "cli")]
    )
    assert result.exit_code == 0, result.output
    assert "HR@10" in result.output


def test_exposure_metrics_judge_lists_by_the_truth() -> None:
    truth = {
        "catalog": {"a": {"quality": 0.9}, "b": {"quality": 0.5}},
        "incidents": [{"item_id": "a", "start_ts": 100, "end_ts": 200, "quality_during": 0.1}],
    }
    lists = {"popularity": ("a", "b"), "no_sentiment": ("a",), "sentiment": ("b",)}
    evaluated = [
        Evaluated("u", "o1", "b", 150, lists, lists, lists, False),  # during the incident
        Evaluated("u", "o2", "b", 250, lists, lists, lists, False),  # after it
    ]
    out = exposure_metrics(evaluated, truth, 10, ["fresh"])["fresh"]
    assert out["no_sentiment"] == {"incident_exposure": 0.5, "mean_quality": 0.5}
    assert out["sentiment"] == {"incident_exposure": 0.0, "mean_quality": 0.5}
    assert out["popularity"]["mean_quality"] == pytest.approx((0.1 + 0.5 + 0.9 + 0.5) / 4)
