"""A tiny randomly initialised BERT saved to disk, so tests never need real training."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

TINY_CHARS = "好不差很是的了我们这个"


def tiny_vocab() -> dict[str, int]:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(string.ascii_lowercase + string.digits + ",.!?，。！、")
    tokens += ["##" + c for c in string.ascii_lowercase]
    tokens += list(TINY_CHARS)
    return {t: i for i, t in enumerate(tokens)}


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BertForSequenceClassification (hidden 32, 2 layers) + its WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from ecomstream.model.runtime import prepare_runtime

    prepare_runtime()
    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = BertTokenizer(vocab=tiny_vocab(), do_lower_case=True)  # vocab=, not vocab_file=
    tokenizer.model_max_length = 32
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # spread the logits so int8 rounding rarely flips a label
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(path)
    return path
