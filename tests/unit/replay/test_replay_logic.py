"""Replay logic without a broker: sources, steps, output comparison, report arithmetic."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ecomstream.recommend.evaluate import Evaluated
from ecomstream.replay import OffsetRange, RecordedEvent, event_time_steps, read_jsonl_source
from ecomstream.replay.driver import ReplayError, namespace_prefix
from ecomstream.replay.outputs import compare_outputs, output_path
from ecomstream.replay.report import sentiment_quality, shown_by_pipeline


def test_jsonl_source_keeps_order_keys_and_event_time(tmp_path: Path) -> None:
    path = tmp_path / "sim.jsonl"
    lines = [
        {"topic": "clicks", "key": "u1", "value": {"event_id": "e1", "ts": 1_000}},
        {"topic": "reviews", "key": "u2", "value": {"review_id": "r1", "ts": 2_000}},
    ]
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    events = read_jsonl_source(path)
    assert [(e.topic, e.key, e.ts, e.partition) for e in events] == [
        ("clicks", b"u1", 1_000, None),
        ("reviews", b"u2", 2_000, None),
    ]
    assert orjson.loads(events[1].value or b"") == lines[1]["value"]


def test_steps_cut_event_time_and_keep_late_events_behind_their_predecessors() -> None:
    def ev(partition: int, ts: int) -> RecordedEvent:
        return RecordedEvent("clicks", partition, b"k", b"{}", ts)

    events = [ev(0, 10), ev(1, 61_000), ev(0, 125_000), ev(0, 30), ev(1, 59_000)]
    steps = [[(e.partition, e.ts) for e in step] for step in event_time_steps(events, 60_000)]
    # partition 0's late event (ts 30) follows its predecessor into the step of 125 s;
    # partition 1's (59 s) stays in its predecessor's step (61 s).
    assert steps == [[(0, 10)], [(1, 61_000), (1, 59_000)], [(0, 125_000), (0, 30)]]
    with pytest.raises(ValueError):
        list(event_time_steps(events, 0))


def test_offset_ranges_and_namespaces_are_validated() -> None:
    assert OffsetRange.parse("reviews/3=5:9") == OffsetRange("reviews", 3, 5, 9)
    for bad in ("reviews/3=9:5", "orders/0=0:1", "clicks=0:1"):
        with pytest.raises(ValueError):
            OffsetRange.parse(bad)
    assert namespace_prefix("a-b_1") == "replay.a-b_1."
    for bad in ("", "A", "has space", "../x"):
        with pytest.raises(ReplayError):
            namespace_prefix(bad)


def _write(run: Path, topic: str, records: list[dict[str, object]]) -> None:
    path = output_path(run, topic)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_comparison_ignores_measurements_and_order_but_nothing_else(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    score = {"score_id": "r1@m:1", "label": "negative", "latency_ms": 1.0, "scored_at": 5}
    other = {"score_id": "r2@m:1", "label": "positive", "latency_ms": 2.0, "scored_at": 6}

    def rec(key: str, value: dict[str, object]) -> dict[str, object]:
        return {"partition": 0, "key": key, "value": value}

    _write(a, "review-scores", [rec("i1", score), rec("i2", other)])
    timed_differently = {**score, "latency_ms": 9.0, "scored_at": 99}
    _write(b, "review-scores", [rec("i2", other), rec("i1", timed_differently)])
    assert all(d.equal for d in compare_outputs(a, b))

    _write(b, "review-scores", [rec("i2", other), rec("i1", {**score, "label": "positive"})])
    diff = {d.topic: d for d in compare_outputs(a, b)}["review-scores"]
    assert (diff.same, diff.only_a, diff.only_b) == (1, 1, 1)
    assert diff.example_b["value"]["label"] == "positive"


def test_sentiment_quality_leaves_three_stars_out() -> None:
    q = sentiment_quality([("negative", 1), ("negative", 2), ("positive", 4), ("negative", 3)])
    assert (q["rated"], q["accuracy"], q["macro_f1"], q["negative_share"]) == (3, 1.0, 1.0, 0.75)
    assert sentiment_quality([])["accuracy"] is None


def test_a_purchase_is_scored_against_the_last_list_emitted_before_it() -> None:
    def bought(user: str, ts: int) -> Evaluated:
        fresh = {"popularity": ("pop",)}
        return Evaluated(user, "o", "i", ts, fresh, {}, {}, False)

    lists = {"u1": ([100, 200], [("early",), ("late",)])}
    evaluated = [bought("u1", 150), bought("u1", 200), bought("u1", 201), bought("u2", 5)]
    assert shown_by_pipeline(evaluated, lists) == [("early",), ("early",), ("late",), ("pop",)]


def test_the_deployed_detector_has_no_end_of_input_flush() -> None:
    from ecomstream.alerts.config import AlertConfig
    from ecomstream.alerts.evaluate import replay as one_monitor
    from ecomstream.alerts.records import ScoredReview
    from ecomstream.replay.report import as_deployed

    config = AlertConfig(min_reviews=4, min_negative=4)
    t0 = 1_767_225_600_000
    reviews = [ScoredReview(f"r{i}", "i1", "home", t0 + i * 60_000, True, 0.95) for i in range(6)]
    deployed = as_deployed(reviews, config, partitions=4)
    assert [a.state for a in deployed] == ["firing"]
    # The per-capability replay also lets the clock run past the end: the episode resolves.
    assert [a.state for a in one_monitor(reviews, config).alerts] == ["firing", "resolved"]
