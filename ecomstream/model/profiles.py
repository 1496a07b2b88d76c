"""Training profiles: the whole hyper-parameter set as one frozen, named value.

Why frozen dataclasses: a run records ``dataclasses.asdict(profile)`` in its
``training.json``, so a profile must not change after the run started, and two
runs with the same profile name and seed must train the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class PretrainConfig:
    """Domain-adaptive masked-LM pretraining on unlabeled train-split texts."""

    epochs: int
    max_texts: int | None  # None: every train text
    batch_size: int
    lr: float
    embedding_lr: float  # word embeddings (new characters start near the mean) learn faster
    mask_probability: float
    warmup_ratio: float
    weight_decay: float


@dataclass(frozen=True)
class FinetuneConfig:
    """Supervised fine-tuning of the sequence classifier with early stopping."""

    epochs: int
    max_examples: int | None  # None: the whole train split
    batch_size: int
    lr: float
    embedding_lr: float
    warmup_ratio: float
    weight_decay: float
    patience: int  # epochs without validation improvement before stopping
    max_validation: int | None  # None: the whole validation split
    label_smoothing: float


@dataclass(frozen=True)
class TrainingProfile:
    name: str
    max_len: int
    min_char_freq: int  # corpus characters seen at least this often join the vocabulary
    # new embedding rows = mean(existing) + noise_scale * std(existing) * N(0, 1), seeded
    embedding_noise_scale: float
    pretrain: PretrainConfig
    finetune: FinetuneConfig

    def with_overrides(self, **changes: Any) -> TrainingProfile:
        """A copy with top-level fields replaced (for tests and experiments)."""
        return replace(self, **changes)


QUICK = TrainingProfile(
    name="quick",
    max_len=64,
    min_char_freq=3,
    embedding_noise_scale=1.0,
    pretrain=PretrainConfig(
        epochs=1,
        max_texts=1_280,
        batch_size=32,
        lr=1e-4,
        embedding_lr=2e-3,
        mask_probability=0.15,
        warmup_ratio=0.1,
        weight_decay=0.01,
    ),
    finetune=FinetuneConfig(
        epochs=2,
        max_examples=2_000,
        batch_size=32,
        lr=8e-5,
        embedding_lr=3e-3,
        warmup_ratio=0.1,
        weight_decay=0.01,
        patience=1,
        max_validation=600,
        label_smoothing=0.0,
    ),
)

FULL = TrainingProfile(
    name="full",
    max_len=128,
    min_char_freq=2,
    embedding_noise_scale=1.0,
    pretrain=PretrainConfig(
        epochs=2,
        max_texts=None,
        batch_size=32,
        lr=1e-4,
        embedding_lr=2e-3,
        mask_probability=0.15,
        warmup_ratio=0.06,
        weight_decay=0.01,
    ),
    finetune=FinetuneConfig(
        epochs=4,
        max_examples=None,
        batch_size=32,
        lr=5e-5,
        embedding_lr=1e-3,
        warmup_ratio=0.1,
        weight_decay=0.01,
        patience=1,
        max_validation=None,
        label_smoothing=0.0,
    ),
)

PROFILES: dict[str, TrainingProfile] = {p.name: p for p in (QUICK, FULL)}


def get_profile(name: str) -> TrainingProfile:
    """The named profile; a clear error lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown profile {name!r}; known: {known}") from None


def profile_from_dict(data: dict[str, Any]) -> TrainingProfile:
    """Rebuild a profile recorded in ``training.json`` (inverse of ``asdict``)."""
    top = {f.name for f in fields(TrainingProfile)}
    values = {k: v for k, v in data.items() if k in top}
    values["pretrain"] = PretrainConfig(**data["pretrain"])
    values["finetune"] = FinetuneConfig(**data["finetune"])
    return TrainingProfile(**values)
