"""Parsing of CLI-style values and refusal of configurations that cannot run."""

from __future__ import annotations

import pytest

from ecomstream.data.corpus import ReviewCorpus
from ecomstream.simulator import IncidentSpec, Shop, SimConfig
from ecomstream.simulator.config import (
    DEFAULT_START_MS,
    SimConfigError,
    parse_duration,
    parse_start,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("45s", 45.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2x", "1h 30m", "-5", "m30"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_start() -> None:
    assert parse_start("2026-01-01T00:00Z") == DEFAULT_START_MS
    assert parse_start("2026-01-01T00:00:00") == DEFAULT_START_MS
    assert parse_start("2026-01-01T08:00+08:00") == DEFAULT_START_MS
    assert parse_start(str(DEFAULT_START_MS)) == DEFAULT_START_MS


def test_incident_spec_parse() -> None:
    assert IncidentSpec.parse("i0042@1h") == IncidentSpec("i0042", 3600.0)
    with pytest.raises(ValueError):
        IncidentSpec.parse("i0042")
    with pytest.raises(ValueError):
        IncidentSpec.parse("@1h")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_s": None, "events": None},
        {"duration_s": 0.0},
        {"events": 0},
        {"users": 0},
        {"items": 5, "categories": 8},
        {"review_rate": 1.5},
        {"sessions_per_user_hour": 0.0},
    ],
)
def test_config_refuses_impossible_runs(kwargs: dict[str, object]) -> None:
    with pytest.raises(SimConfigError):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_unknown_or_late_incident_item_is_refused(corpus: ReviewCorpus) -> None:
    with pytest.raises(SimConfigError, match="not in the catalog"):
        Shop(SimConfig(users=10, items=20, incidents=(IncidentSpec("i9999", 60.0),)), corpus)
    with pytest.raises(SimConfigError, match="after the end"):
        Shop(SimConfig(users=10, items=20, incidents=(IncidentSpec("i0001", 3 * 3600.0),)), corpus)
    with pytest.raises(SimConfigError, match="qualify"):
        Shop(SimConfig(users=10, items=20, random_incidents=50), corpus)
