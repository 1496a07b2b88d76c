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
        {"scorer_sensitivity": 0.3, "scorer_false_positive_rate": 0.3},
        {"scorer_sensitivity": 1.2},
        {"scorer_false_positive_rate": -0.1},
    ],
)
def test_inconsistent_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AlertConfig(**kwargs)  # type: ignore[arg-type]


def test_a_perfect_scorer_leaves_prior_and_margins_as_set() -> None:
    config = AlertConfig()
    assert (config.label_prior, config.warn_rise) == (config.global_prior, config.warn_margin)
    assert (config.critical_rise, config.resolve_rise) == (0.4, 0.1)


def test_scorer_error_rates_map_true_shares_onto_label_shares() -> None:
    """A true share q shows as fpr + (sensitivity - fpr)·q in the labels."""
    config = AlertConfig(scorer_sensitivity=0.8, scorer_false_positive_rate=0.2, global_prior=0.1)
    assert config.discrimination == pytest.approx(0.6)
    assert config.label_prior == pytest.approx(0.2 + 0.6 * 0.1)
    rises = (config.warn_rise, config.critical_rise, config.resolve_rise)
    assert rises == pytest.approx((0.12, 0.24, 0.06))


def test_quick_model_preset_parses_into_a_valid_config() -> None:
    from ecomstream.alerts import QUICK_MODEL_PRESET
    from ecomstream.alerts.config import ENV_PREFIX

    config = AlertConfig.from_preset(QUICK_MODEL_PRESET)
    for name, value in QUICK_MODEL_PRESET.items():
        assert getattr(config, name) == type(getattr(config, name))(value), name
    # The same strings reach the worker as ECOMSTREAM_ALERT_<FIELD> settings.
    env = {ENV_PREFIX + name.upper(): value for name, value in QUICK_MODEL_PRESET.items()}
    assert AlertConfig.from_env(env) == config
    assert (config.scorer_sensitivity, config.scorer_false_positive_rate) == (0.7528, 0.2444)
    assert config.fire_test == "llr" and len(config.likelihood_ratios) == 10
    # Confident scores weigh more than the hard label (sens/fpr ~3.1 and ~0.33).
    assert config.likelihood_ratios[-1] > 7 and config.likelihood_ratios[0] < 0.15


def test_full64_model_preset_parses_into_a_valid_config() -> None:
    from ecomstream.alerts import FULL64_MODEL_PRESET

    config = AlertConfig.from_preset(FULL64_MODEL_PRESET)
    assert config.fire_test == "wilson" and config.discrimination > 0.6
    assert AlertConfig.from_preset(FULL64_MODEL_PRESET, fire_test="llr").likelihood_ratios


def test_llr_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="fire_test"):
        AlertConfig(fire_test="bogus")
    with pytest.raises(ValueError, match="scorer_ratios"):
        AlertConfig(scorer_ratios="1,2,3")
    with pytest.raises(ValueError, match="scorer_ratios"):
        AlertConfig(scorer_ratios="0,1")
    with pytest.raises(ValueError, match="llr"):
        AlertConfig(llr_rise=1.0)
    env = {"ECOMSTREAM_ALERT_FIRE_TEST": "llr", "ECOMSTREAM_ALERT_SCORER_RATIOS": "0.5,2"}
    config = AlertConfig.from_env(env)
    assert config.likelihood_ratios == (0.5,) * 5 + (2.0,) * 5


def test_a_preset_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="z_fir"):
        AlertConfig.from_preset({"z_fir": "2.5"})


def test_the_demo_uses_the_quick_model_preset() -> None:
    from ecomstream.alerts import QUICK_MODEL_PRESET
    from ecomstream.demo import DEMO_ALERT_SETTINGS

    assert {f"alert_{k}": v for k, v in QUICK_MODEL_PRESET.items()} == DEMO_ALERT_SETTINGS
