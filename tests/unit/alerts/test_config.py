from __future__ import annotations

import pytest

from ecomstream.alerts import AlertConfig


def test_from_env_reads_prefixed_fields_with_their_types() -> None:
    config = AlertConfig.from_env(
        {
            "ECOMSTREAM_ALERT_Z_FIRE": "3.5",
            "ECOMSTREAM_ALERT_WINDOW_BUCKETS": "12",
            "ECOMSTREAM_ALERT_EVIDENCE_TEXT": "0",
            "OTHER": "x",
        }
    )
    assert (config.z_fire, config.window_buckets, config.evidence_text) == (3.5, 12, False)
    assert config.window_ms == 12 * config.bucket_ms


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bucket_ms": 0},
        {"grace_ms": 30 * 60_000},
        {"min_reviews": 3, "min_negative": 4},
        {"warn_margin": 0.5, "critical_margin": 0.4},
        {"resolve_margin": 0.3},
        {"cooldown_ms": 1000},
        {"global_prior": 1.0},
    ],
)
def test_inconsistent_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AlertConfig(**kwargs)  # type: ignore[arg-type]
