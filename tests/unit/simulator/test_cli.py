"""``ecomstream simulate`` end to end into a file (the Kafka path is covered by the runner)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ecomstream.cli import main
from ecomstream.simulator import load_truth, read_jsonl

ARGS = ["simulate", "--users", "300", "--items", "80", "--categories", "8", "--no-progress"]


def test_simulate_to_jsonl_writes_events_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "shop.jsonl"
    result = CliRunner().invoke(
        main,
        [
            *ARGS,
            "--duration",
            "90m",
            "--incident",
            "i0003@40m",
            "--incident-duration",
            "20m",
            "--seed",
            "9",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "clicks=" in result.output and "reviews=" in result.output
    truth = load_truth(tmp_path / "shop.truth.json")
    assert truth["seed"] == 9 and truth["config"]["duration_s"] == 5400.0
    [incident] = truth["incidents"]
    assert incident["item_id"] == "i0003"
    assert incident["start_ts"] == truth["start_ts"] + 40 * 60_000
    assert incident["end_ts"] == incident["start_ts"] + 20 * 60_000
    assert sum(1 for _ in read_jsonl(out)) == truth["counts"]["total"]


def test_simulate_events_limit_and_explicit_truth_path(tmp_path: Path) -> None:
    truth = tmp_path / "deep" / "truth.json"
    result = CliRunner().invoke(
        main, [*ARGS, "--events", "1234", "--out", str(tmp_path / "a.jsonl"), "--truth", str(truth)]
    )
    assert result.exit_code == 0, result.output
    assert load_truth(truth)["counts"]["total"] == 1234


def test_simulate_reports_bad_input_as_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    for bad in (
        ["--incident", "i9999@10m"],
        ["--incident", "nonsense"],
        ["--duration", "2x"],
        ["--start", "yesterday"],
    ):
        result = CliRunner().invoke(main, [*ARGS, *bad, "--out", out])
        assert result.exit_code == 2, (bad, result.output)
