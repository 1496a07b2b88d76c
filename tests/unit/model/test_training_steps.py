"""MLM masking and one short pretrain/fine-tune pass on the tiny BERT (seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from ecomstream.data.corpus import LabelledText
from ecomstream.model.finetune import finetune
from ecomstream.model.pretrain import mask_tokens, pretrain_mlm
from ecomstream.model.profiles import FinetuneConfig, PretrainConfig


def test_mask_tokens_never_touches_special_or_padding() -> None:
    ids = torch.tensor([[2, 10, 11, 12, 3, 0, 0], [2, 13, 14, 15, 16, 17, 3]])
    mask = (ids != 0).long()
    gen = torch.Generator().manual_seed(0)
    masked, labels = mask_tokens(
        ids, mask, special_ids=[0, 2, 3], mask_id=4, vocab_size=30, probability=0.5, generator=gen
    )
    special = torch.isin(ids, torch.tensor([0, 2, 3]))
    assert (labels[special] == -100).all()
    assert torch.equal(masked[special], ids[special])
    picked = labels != -100
    assert picked.any()
    assert torch.equal(labels[picked], ids[picked])
    assert torch.equal(masked[~picked], ids[~picked])
    # reproducible by generator seed
    again = mask_tokens(
        ids,
        mask,
        special_ids=[0, 2, 3],
        mask_id=4,
        vocab_size=30,
        probability=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(again[0], masked) and torch.equal(again[1], labels)


def test_short_pretrain_and_finetune(tiny_bert_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    texts = ["很好很好", "不好", "很差", "我们很好"] * 8
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    cfg = PretrainConfig(
        epochs=2,
        max_texts=None,
        batch_size=8,
        lr=1e-3,
        embedding_lr=1e-3,
        mask_probability=0.3,
        warmup_ratio=0.1,
        weight_decay=0.01,
    )
    history = pretrain_mlm(
        mlm, tokenizer, texts, cfg, max_len=16, seed=0, device=torch.device("cpu"), progress=False
    )
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["mlm_loss"] > 0 for h in history)

    clf = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    torch.manual_seed(0)
    with torch.no_grad():  # the fixture's head is scaled up for export tests; undo that here
        clf.classifier.weight.normal_(0.0, 0.02)
    train = [LabelledText("很好", 1), LabelledText("很差", 0)] * 16
    ft = FinetuneConfig(
        epochs=6,
        max_examples=None,
        batch_size=8,
        lr=3e-3,
        embedding_lr=3e-3,
        warmup_ratio=0.1,
        weight_decay=0.0,
        patience=6,
        max_validation=None,
        label_smoothing=0.0,
    )
    result = finetune(
        clf,
        tokenizer,
        train,
        train[:4],
        ft,
        max_len=16,
        seed=0,
        device=torch.device("cpu"),
        progress=False,
    )
    assert 1 <= result.best_epoch <= 6
    assert result.best_validation_accuracy == max(h["validation_accuracy"] for h in result.history)
    assert result.best_validation_accuracy == 1.0  # "好" vs "差" is learnable in 24 steps
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def _tiny_finetune_config() -> FinetuneConfig:
    return FinetuneConfig(
        epochs=2,
        max_examples=48,
        batch_size=8,
        lr=3e-3,
        embedding_lr=3e-3,
        warmup_ratio=0.1,
        weight_decay=0.01,
        patience=1,
        max_validation=16,
        label_smoothing=0.0,
    )


def test_finetune_is_reproducible_by_seed(tiny_bert_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    train = [LabelledText("很好" * (i % 3 + 1), 1) for i in range(12)] + [
        LabelledText("很差" * (i % 3 + 1), 0) for i in range(12)
    ]

    def run(seed: int) -> tuple[list[float], torch.Tensor]:
        torch.manual_seed(seed)  # dropout draws from the global generator
        model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
        result = finetune(
            model,
            tokenizer,
            train,
            train[:6],
            _tiny_finetune_config(),
            max_len=16,
            seed=seed,
            device=torch.device("cpu"),
            progress=False,
        )
        return [h["train_loss"] for h in result.history], model.classifier.weight.detach()

    a, b, c = run(0), run(0), run(1)
    assert a[0] == b[0]
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
    assert a[0] != c[0]


@pytest.mark.slow
def test_train_end_to_end_on_tiny_bert(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """The whole run (vocabulary over the real train split, MLM, fine-tune, save)."""
    from ecomstream.model.profiles import QUICK, TrainingProfile
    from ecomstream.model.train import load_training_record, train

    profile = TrainingProfile(
        name="tiny",
        max_len=32,
        min_char_freq=50,
        embedding_noise_scale=1.0,
        pretrain=PretrainConfig(
            epochs=1,
            max_texts=32,
            batch_size=16,
            lr=1e-3,
            embedding_lr=1e-3,
            mask_probability=0.15,
            warmup_ratio=0.1,
            weight_decay=0.01,
        ),
        finetune=_tiny_finetune_config(),
    )
    assert profile.max_len < QUICK.max_len
    record = train(profile, base=tiny_bert_dir, out=tmp_path, seed=3, progress=False)
    assert record == load_training_record(tmp_path)
    ext = record["vocab_extension"]
    assert ext["added"] > 100 and ext["unk_rate_after"] < ext["unk_rate_before"]
    assert record["embedding_init"]["new_rows"] == ext["added"]
    assert record["data"]["finetune_examples"] == 48 and record["data"]["mlm_texts"] == 32
    assert len(record["pretrain"]) == 1 and 1 <= len(record["finetune"]) <= 2
    assert set(record["timing_s"]) == {"vocab_s", "pretrain_s", "finetune_s", "total_s"}
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert len(reloaded) == ext["new_size"] == model.config.vocab_size
    assert model.config.id2label == {0: "negative", 1: "positive"}
