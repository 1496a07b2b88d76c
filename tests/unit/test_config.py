from __future__ import annotations

import pytest

from ecomstream.alerts import AlertConfig
from ecomstream.profiles.config import ProfileConfig
from ecomstream.recommend.recommender import RecommenderConfig


def test_worker_settings_parse_with_each_fields_type() -> None:
    config = RecommenderConfig.from_env(
        {
            "ECOMSTREAM_RECOMMEND_K": "20",
            "ECOMSTREAM_RECOMMEND_DIVERSITY": "0.5",
            "ECOMSTREAM_RECOMMEND_USE_SENTIMENT": "false",
            "ECOMSTREAM_RECOMMEND_MAX_PER_CATEGORY": "3",
            "ECOMSTREAM_RECOMMEND_SENTIMENT_SPARES": "none",
            "ECOMSTREAM_PROFILE_DEBOUNCE_S": "1",  # another prefix: not this config's
        }
    )
    assert (config.k, config.diversity, config.use_sentiment) == (20, 0.5, False)
    assert (config.max_per_category, config.sentiment_spares) == (3, None)
    assert ProfileConfig.from_env({"ECOMSTREAM_PROFILE_MIN_NEW_ITEMS": "3"}).min_new_items == 3


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        # A typo must not silently leave the default in place.
        ({"ECOMSTREAM_RECOMMEND_DEBOUNCE_S": "60"}, "ECOMSTREAM_RECOMMEND_DEBOUNCE_S: unknown"),
        ({"ECOMSTREAM_RECOMMEND_K": "ten"}, "ECOMSTREAM_RECOMMEND_K='ten'"),
        ({"ECOMSTREAM_RECOMMEND_K": "2.5"}, "ECOMSTREAM_RECOMMEND_K='2.5'"),
        # None only where the field is optional.
        ({"ECOMSTREAM_RECOMMEND_K": "none"}, "ECOMSTREAM_RECOMMEND_K='none'"),
        # The config's own checks still apply.
        ({"ECOMSTREAM_RECOMMEND_DIVERSITY": "0"}, "diversity must be in"),
    ],
)
def test_bad_worker_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        RecommenderConfig.from_env(environ)


def test_structured_fields_are_not_settings() -> None:
    # Windows and weight maps shape the stored profile; they are code, not a variable.
    with pytest.raises(ValueError, match="unknown setting"):
        ProfileConfig.from_env({"ECOMSTREAM_PROFILE_WINDOWS": "1h"})
    with pytest.raises(ValueError, match="unknown setting"):
        AlertConfig.from_env({"ECOMSTREAM_ALERT_Z_FIRST": "3"})
