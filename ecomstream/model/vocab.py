"""Extend a pretrained tokenizer with the corpus' frequent unknown characters.

Why: all-MiniLM-L6-v2 has an English vocabulary that covers about a quarter of
the Chinese characters in the review corpus; every other character becomes
``[UNK]`` and the model cannot tell "好" from "差". Adding each frequent unknown
character as its own token (before MLM pretraining, which then teaches the new
embeddings) is the cheapest fix that keeps every existing token id unchanged.

For WordPiece tokenizers the characters join the WordPiece vocabulary itself
(CJK characters are always split into single-character words by the BERT
pre-tokenizer; other characters also get their ``##`` continuation form).
Any other tokenizer falls back to ``add_tokens``. Either way the result is
saved as a plain ``tokenizer.json`` that the ``tokenizers`` library reads.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

INIT_METHOD = "mean_of_existing_rows_plus_seeded_gaussian_noise"


@dataclass(frozen=True)
class VocabExtension:
    """What the extension did, recorded in ``training.json``."""

    method: str  # "wordpiece_vocab", "added_tokens" or "none"
    base_size: int
    new_size: int
    added: int
    min_freq: int
    candidates: int  # distinct unknown pieces seen in the texts
    unk_rate_before: float  # fraction of tokens that were [UNK] on the texts
    unk_rate_after: float
    examples: tuple[str, ...]  # the most frequent added tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "examples": list(self.examples)}  # JSON-shaped


def is_cjk(char: str) -> bool:
    """The code-point ranges BERT's basic tokenizer isolates as Chinese characters.

    >>> is_cjk("好"), is_cjk("a"), is_cjk("，")
    (True, False, False)
    """
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _plain_backend(tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """A copy of the fast backend with padding and truncation off (for counting)."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def unk_rate(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> float:
    """Fraction of the tokens of ``texts`` (special tokens excluded) that are unknown."""
    unk_id = tokenizer.unk_token_id
    backend = _plain_backend(tokenizer)
    total = unknown = 0
    for enc in backend.encode_batch(list(texts), add_special_tokens=False):
        total += len(enc.ids)
        unknown += sum(1 for i in enc.ids if i == unk_id)
    return unknown / total if total else 0.0


def unknown_pieces(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> Counter[str]:
    """Count the single-character pieces that would make unknown words known.

    WordPiece: for every pre-tokenized word that encodes to ``[UNK]``, each
    character needs its word-initial form (``c``) or continuation form (``##c``);
    the forms missing from the vocabulary are counted. Other tokenizers: every
    character that alone encodes to the unknown token is counted.
    """
    backend = _plain_backend(tokenizer)
    model = json.loads(backend.to_str())["model"]
    counts: Counter[str] = Counter()
    if model.get("type") == "WordPiece":
        vocab: dict[str, int] = model["vocab"]
        prefix: str = model.get("continuing_subword_prefix", "##")
        unk: str = model.get("unk_token", "[UNK]")
        normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
        known: dict[str, bool] = {}  # word -> encodes without [UNK]; words repeat a lot
        for text in texts:
            norm = normalizer.normalize_str(text) if normalizer else text
            words = pre_tokenizer.pre_tokenize_str(norm) if pre_tokenizer else [(norm, (0, 0))]
            for word, _ in words:
                if word in vocab:
                    continue
                if word not in known:
                    known[word] = all(t.value != unk for t in backend.model.tokenize(word))
                if known[word]:
                    continue
                for i, char in enumerate(word):
                    piece = char if i == 0 else prefix + char
                    if piece not in vocab:
                        counts[piece] += 1
        return counts
    unk_id = tokenizer.unk_token_id
    if unk_id is None:  # byte-level BPE and the like: nothing is ever unknown
        return counts
    char_counts = Counter(ch for text in texts for ch in text if not ch.isspace())
    for char, n in char_counts.items():
        if unk_id in backend.encode(char, add_special_tokens=False).ids:
            counts[char] += n
    return counts


def _select(counts: Counter[str], min_freq: int) -> list[str]:
    """Pieces seen at least ``min_freq`` times, most frequent first, ties by code point.

    Control and private-use characters are never added.
    """
    chosen = []
    for piece, n in counts.items():
        char = piece[-1]
        if n < min_freq or unicodedata.category(char) in {"Cc", "Cf", "Co", "Cs"}:
            continue
        chosen.append(piece)
    return sorted(chosen, key=lambda p: (-counts[p], p))


def extend_tokenizer(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], min_freq: int
) -> tuple[PreTrainedTokenizerBase, VocabExtension]:
    """A new tokenizer whose vocabulary also holds the frequent unknown pieces of ``texts``.

    Old ids keep their meaning; new pieces get ids ``len(tokenizer)`` onward, in
    order of decreasing frequency, so the result is deterministic for given texts.
    """
    from transformers import AutoTokenizer

    base_size = len(tokenizer)
    before = unk_rate(tokenizer, texts)
    counts = unknown_pieces(tokenizer, texts)
    pieces = _select(counts, min_freq)
    if not pieces:
        ext = VocabExtension(
            "none", base_size, base_size, 0, min_freq, len(counts), before, before, ()
        )
        return tokenizer, ext

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    if state["model"].get("type") == "WordPiece":
        method = "wordpiece_vocab"
        vocab: dict[str, int] = state["model"]["vocab"]
        taken = set(vocab.values()) | {t["id"] for t in state.get("added_tokens", [])}
        next_id = max(taken) + 1
        for piece in pieces:
            vocab[piece] = next_id
            next_id += 1
        with tempfile.TemporaryDirectory(prefix="ecomstream-vocab-") as tmp:
            tokenizer.save_pretrained(tmp)
            (Path(tmp) / "vocab.txt").unlink(missing_ok=True)  # tokenizer.json is the truth
            Path(tmp, "tokenizer.json").write_text(
                json.dumps(state, ensure_ascii=False), encoding="utf-8"
            )
            extended = AutoTokenizer.from_pretrained(tmp)
    else:
        method = "added_tokens"
        extended = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
        extended.add_tokens([p for p in pieces if len(p) == 1])
    ext = VocabExtension(
        method=method,
        base_size=base_size,
        new_size=len(extended),
        added=len(extended) - base_size,
        min_freq=min_freq,
        candidates=len(counts),
        unk_rate_before=before,
        unk_rate_after=unk_rate(extended, texts),
        examples=tuple(pieces[:20]),
    )
    return extended, ext


def embedding_matrix(model: PreTrainedModel) -> torch.Tensor:
    """The input word-embedding weight (typed: transformers annotates it loosely)."""
    import torch

    weight = model.get_input_embeddings().weight
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"unexpected embedding weight type {type(weight)}")
    return weight


def resize_embeddings(
    model: PreTrainedModel, new_size: int, *, noise_scale: float, seed: int
) -> dict[str, Any]:
    """Grow the input (and tied output) embeddings to ``new_size`` rows.

    New rows start at the mean of the existing rows plus seeded Gaussian noise
    whose per-dimension std is ``noise_scale`` times that of the existing rows:
    the mean keeps the new tokens in the region the encoder was trained on,
    the noise - at the scale real tokens differ by - makes them distinguishable
    from the first step, so MLM and fine-tuning can pull them apart quickly
    (with a tiny noise every new character starts as the same "average" token).
    Existing rows are untouched. Returns a description for ``training.json``.
    """
    import torch

    old_size = embedding_matrix(model).shape[0]
    if new_size <= old_size:
        return {"method": "unchanged", "old_rows": old_size, "new_rows": 0}
    model.resize_token_embeddings(new_size, mean_resizing=False)
    weight = embedding_matrix(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mean = weight[:old_size].mean(dim=0)
        std = weight[:old_size].std(dim=0)
        noise = torch.randn(new_size - old_size, weight.shape[1], generator=generator)
        weight[old_size:] = mean + noise_scale * std * noise
    return {
        "method": INIT_METHOD,
        "old_rows": old_size,
        "new_rows": new_size - old_size,
        "noise_scale": noise_scale,
        "existing_rows_mean_std": round(float(std.mean()), 6),
        "seed": seed,
    }
