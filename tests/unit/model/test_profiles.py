from __future__ import annotations

import dataclasses

import pytest

from ecomstream.model.profiles import FULL, PROFILES, QUICK, get_profile, profile_from_dict


def test_known_profiles() -> None:
    assert set(PROFILES) == {"quick", "full"}
    assert get_profile("quick") is QUICK
    with pytest.raises(ValueError, match="known: full, quick"):
        get_profile("huge")


def test_profiles_are_frozen_and_round_trip() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUICK.max_len = 1  # type: ignore[misc]
    for profile in PROFILES.values():
        assert profile_from_dict(dataclasses.asdict(profile)) == profile


def test_quick_is_smaller_than_full() -> None:
    assert QUICK.max_len <= FULL.max_len
    assert QUICK.finetune.max_examples is not None
    assert FULL.finetune.max_examples is None  # full uses the whole train split
    assert QUICK.pretrain.max_texts is not None
    for p in PROFILES.values():
        assert 0 < p.pretrain.mask_probability < 1
        assert p.finetune.patience >= 1
        assert p.pretrain.embedding_lr >= p.pretrain.lr


def test_with_overrides() -> None:
    p = QUICK.with_overrides(max_len=16)
    assert p.max_len == 16 and QUICK.max_len != 16
