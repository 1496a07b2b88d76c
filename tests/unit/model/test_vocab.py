from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ecomstream.model.vocab import extend_tokenizer, resize_embeddings, unk_rate

TEXTS = ["质量很好，很满意", "质量太差了", "满意满意", "物流太慢", "慢慢来", "独"]


def test_new_characters_get_single_new_ids(tiny_bert_dir: Path) -> None:
    base = AutoTokenizer.from_pretrained(tiny_bert_dir)
    old_vocab = dict(base.get_vocab())
    extended, ext = extend_tokenizer(base, TEXTS, min_freq=2)
    assert ext.method == "wordpiece_vocab"
    assert ext.base_size == len(base) and ext.new_size == len(extended)
    # seen >= 2 times: 质 量 满 意 太 慢; seen once: 物 流 独 (stay unknown)
    for char in "质量满意太慢":
        ids = extended(char, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] >= len(base), char
    for char in "物流独":
        assert extended(char, add_special_tokens=False)["input_ids"] == [extended.unk_token_id]
    assert ext.added == 6
    assert ext.unk_rate_after < ext.unk_rate_before
    # old ids keep their meaning
    for token, idx in old_vocab.items():
        assert extended.convert_tokens_to_ids(token) == idx
    known = "我们很好，不差"
    assert extended(known)["input_ids"] == base(known)["input_ids"]
    # most frequent first: deterministic ids
    assert ext.examples[0] in {"满", "意"}


def test_extension_survives_save_and_reload(tiny_bert_dir: Path, tmp_path: Path) -> None:
    extended, _ = extend_tokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), TEXTS, 2)
    extended.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(reloaded) == len(extended)
    assert reloaded(TEXTS)["input_ids"] == extended(TEXTS)["input_ids"]
    assert unk_rate(reloaded, TEXTS) == unk_rate(extended, TEXTS)


def test_nothing_to_add(tiny_bert_dir: Path) -> None:
    base = AutoTokenizer.from_pretrained(tiny_bert_dir)
    same, ext = extend_tokenizer(base, ["很好", "不差"], min_freq=1)
    assert same is base and ext.added == 0 and ext.method == "none"


def test_resize_keeps_old_rows_and_seeds_new_ones(tiny_bert_dir: Path) -> None:
    def build(seed: int) -> torch.Tensor:
        model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
        info = resize_embeddings(model, old + 5, noise_scale=0.5, seed=seed)
        assert info["new_rows"] == 5 and info["old_rows"] == old
        assert model.config.vocab_size == old + 5
        return model.get_input_embeddings().weight.detach().clone()

    ref = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    before = ref.get_input_embeddings().weight.detach().clone()
    old = before.shape[0]
    a, b, c = build(1), build(1), build(2)
    assert a.shape == (old + 5, before.shape[1])
    torch.testing.assert_close(a[:old], before)
    torch.testing.assert_close(a, b)  # same seed, same rows
    assert not torch.equal(a[old:], c[old:])
    # near the mean of the old rows, and distinct from one another
    spread = (a[old:] - before.mean(dim=0)).std(dim=0) / before.std(dim=0)
    assert 0.2 < spread.mean().item() < 1.0  # about noise_scale=0.5
    assert torch.cdist(a[old:], a[old:]).fill_diagonal_(1).min().item() > 0


@pytest.mark.parametrize("noise", [0.0])
def test_resize_without_noise_is_exact_mean(tiny_bert_dir: Path, noise: float) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    w0 = model.get_input_embeddings().weight.detach().clone()
    resize_embeddings(model, w0.shape[0] + 2, noise_scale=noise, seed=0)
    w = model.get_input_embeddings().weight.detach()
    torch.testing.assert_close(w[-1], w0.mean(dim=0))
