"""Rolling user profiles: pure, deterministic update rules over validated input events.

Modules: :mod:`~ecomstream.profiles.config` (bounds and half-lives),
:mod:`~ecomstream.profiles.decay` (forward decay in event time),
:mod:`~ecomstream.profiles.profile` (the state and ``apply_*`` rules),
:mod:`~ecomstream.profiles.codec` (bytes for a Faust table),
:mod:`~ecomstream.profiles.change` (meaningful change and the debounce),
:mod:`~ecomstream.profiles.scores` (the review-scores record we read).
"""

from ecomstream.profiles.change import mark_updated, meaningful_change, should_update, signature
from ecomstream.profiles.codec import decode_profile, encode_profile
from ecomstream.profiles.config import DEFAULT_PROFILE_CONFIG, ProfileConfig, WindowSpec
from ecomstream.profiles.profile import (
    Signature,
    UserProfile,
    apply_accepted,
    apply_click,
    apply_event,
    apply_purchase,
    apply_review,
    apply_review_score,
    is_duplicate,
    session_peers,
)
from ecomstream.profiles.scores import ReviewScore, parse_review_score, rating_as_score

__all__ = [
    "DEFAULT_PROFILE_CONFIG",
    "ProfileConfig",
    "ReviewScore",
    "Signature",
    "UserProfile",
    "WindowSpec",
    "apply_accepted",
    "apply_click",
    "apply_event",
    "apply_purchase",
    "apply_review",
    "apply_review_score",
    "decode_profile",
    "encode_profile",
    "is_duplicate",
    "mark_updated",
    "meaningful_change",
    "parse_review_score",
    "rating_as_score",
    "session_peers",
    "should_update",
    "signature",
]
