"""Supervised fine-tuning of the sequence classifier, with early stopping.

Why early stopping on validation accuracy (ties broken by validation loss):
the corpus is small and its labels are noisy fragments, so the encoder starts
to memorise after a few epochs; the best epoch's weights are kept in memory
and restored at the end.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ecomstream.data.corpus import LabelledText
from ecomstream.model.batching import collate, encode, length_grouped_batches
from ecomstream.model.optim import build_optimizer, warmup_linear
from ecomstream.model.predict import predict_logits, softmax
from ecomstream.model.profiles import FinetuneConfig
from ecomstream.model.runtime import to_device

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_validation_accuracy: float = 0.0
    stopped_early: bool = False


def validation_scores(logits: np.ndarray, labels: Sequence[int]) -> tuple[float, float]:
    """(accuracy, mean negative log-likelihood) of ``logits`` against ``labels``.

    >>> validation_scores(np.array([[2.0, 0.0], [0.0, 2.0]]), [0, 0])[0]
    0.5
    """
    y = np.asarray(labels)
    probs = softmax(logits)
    accuracy = float((probs.argmax(axis=1) == y).mean())
    nll = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean())
    return accuracy, nll


def finetune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: Sequence[LabelledText],
    validation: Sequence[LabelledText],
    cfg: FinetuneConfig,
    *,
    max_len: int,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> FinetuneResult:
    """Train ``model`` in place and leave it holding the best validation epoch's weights."""
    import torch

    rows = encode(tokenizer, [x.text for x in train], max_len)
    labels = torch.tensor([x.label for x in train], dtype=torch.long)
    lengths = [len(r) for r in rows]
    val_texts = [x.text for x in validation]
    val_labels = [x.label for x in validation]
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    optimizer = build_optimizer(
        model, lr=cfg.lr, embedding_lr=cfg.embedding_lr, weight_decay=cfg.weight_decay
    )
    scheduler = warmup_linear(
        optimizer, total_steps=steps_per_epoch * cfg.epochs, warmup_ratio=cfg.warmup_ratio
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    pad_id = tokenizer.pad_token_id or 0
    to_device(model, device)
    result = FinetuneResult()
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    for epoch in range(cfg.epochs):
        started = time.perf_counter()
        model.train()
        batches = length_grouped_batches(lengths, cfg.batch_size, seed=seed, epoch=epoch)
        total = 0.0
        correct = 0
        bar = tqdm(
            batches,
            desc=f"fine-tune epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress,
            unit="batch",
        )
        for step, index in enumerate(bar, start=1):
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in index], pad_id).items()}
            y = labels[index].to(device)
            logits = model(**batch).logits
            loss = loss_fn(logits, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += float(loss.item())
            correct += int((logits.argmax(dim=1) == y).sum().item())
            bar.set_postfix(loss=f"{total / step:.3f}")
        train_seconds = time.perf_counter() - started
        val_logits = predict_logits(
            model,
            tokenizer,
            val_texts,
            max_len=max_len,
            device=device,
            desc="validate" if progress else None,
        )
        val_acc, val_loss = validation_scores(val_logits, val_labels)
        stats = {
            "epoch": epoch + 1,
            "train_loss": total / max(1, len(batches)),
            "train_accuracy": correct / max(1, len(rows)),
            "validation_accuracy": val_acc,
            "validation_loss": val_loss,
            "seconds": round(time.perf_counter() - started, 1),
            "train_seconds": round(train_seconds, 1),
        }
        result.history.append(stats)
        log.info(
            "fine-tune epoch %d: train loss %.3f, validation accuracy %.4f, loss %.4f",
            epoch + 1,
            stats["train_loss"],
            val_acc,
            val_loss,
        )
        key = (val_acc, -val_loss)
        if best_key is None or key > best_key:
            best_key, stale = key, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            result.best_epoch, result.best_validation_accuracy = epoch + 1, val_acc
        else:
            stale += 1
            if stale >= cfg.patience and epoch + 1 < cfg.epochs:
                result.stopped_early = True
                log.info("early stop: no validation improvement for %d epoch(s)", stale)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result
