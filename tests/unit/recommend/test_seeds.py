from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from ecomstream.cli import main
from ecomstream.recommend.seeds import parse_seeds


def test_seed_lists_and_ranges() -> None:
    assert parse_seeds("101-106") == (101, 102, 103, 104, 105, 106)
    assert parse_seeds("3, 1,7-8") == (3, 1, 7, 8)
    with pytest.raises(ValueError):
        parse_seeds("one")


def test_every_seed_is_simulated_scored_and_summarised(tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    args = ["evaluate", "recommendations-seeds", str(out), "--seeds", "1-2", "--users", "400"]
    result = CliRunner().invoke(
        main, [*args, "--duration", "40m", "--incidents", "1", "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "[2/2] seed" in result.output  # progress, one line per finished seed
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert [row["seed"] for row in summary["rows"]] == [1, 2]
    for row in summary["rows"]:
        report = orjson.loads((out / f"seed-{row['seed']}" / "report" / "report.json").read_bytes())
        assert row["hr"]["sentiment"] == report["fresh"]["sentiment"]["hr"]
        assert row["paired"] == report["paired"]["fresh"]
        assert row["purchases"] == report["purchases_scored"] > 0
        assert not (out / f"seed-{row['seed']}" / "run.jsonl").exists()
    markdown = (out / "summary.md").read_text()
    assert markdown.count("\n| 1 |") == markdown.count("\n| 2 |") == 1
    assert "--users 400" in markdown  # the command that reproduces it
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
