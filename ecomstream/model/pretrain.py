"""Domain-adaptive masked-LM pretraining on unlabeled review texts.

Why: the base encoder never saw these characters (most are brand-new rows in
the embedding matrix) nor this domain. A short MLM phase over the *train*
split's texts (never validation or test: no leakage) teaches the new
embeddings from context before the labels are used.

The loss is computed on the masked positions only: projecting every position
onto a 30k+ vocabulary would double the cost of a step on the CPU.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from ecomstream.model.batching import collate, encode, length_grouped_batches
from ecomstream.model.optim import build_optimizer, warmup_linear
from ecomstream.model.profiles import PretrainConfig
from ecomstream.model.runtime import to_device

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    special_ids: Sequence[int],
    mask_id: int,
    vocab_size: int,
    probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick ``probability`` of the real tokens; 80% [MASK], 10% random, 10% kept.

    Returns ``(masked_ids, labels)`` with ``labels == -100`` where nothing is predicted.
    At least one token per batch is always picked so the loss is defined.
    """
    import torch

    labels = input_ids.clone()
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(list(special_ids)))
    draw = torch.rand(input_ids.shape, generator=generator)
    picked = candidates & (draw < probability)
    if not picked.any() and candidates.any():
        first = candidates.nonzero()[0]
        picked[first[0], first[1]] = True
    labels[~picked] = -100
    masked = input_ids.clone()
    action = torch.rand(input_ids.shape, generator=generator)
    masked[picked & (action < 0.8)] = mask_id
    randomize = picked & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked[randomize] = random_ids[randomize]
    return masked, labels


def _mlm_head(model: PreTrainedModel) -> torch.nn.Module | None:
    """The prediction head next to the encoder (BERT's ``cls``, RoBERTa's ``lm_head``)."""
    heads = [m for name, m in model.named_children() if name != model.base_model_prefix]
    return heads[0] if len(heads) == 1 else None


def mlm_loss(
    model: PreTrainedModel, batch: dict[str, torch.Tensor], labels: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy on the masked positions, projecting only those onto the vocabulary."""
    import torch

    head = _mlm_head(model)
    if head is None:  # unknown layout: let the model compute the full loss
        return model(**batch, labels=labels).loss
    hidden = model.base_model(**batch).last_hidden_state
    where = labels != -100
    logits = head(hidden[where])
    return torch.nn.functional.cross_entropy(logits, labels[where])


def pretrain_mlm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    cfg: PretrainConfig,
    *,
    max_len: int,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model`` (an ``AutoModelForMaskedLM``) in place; returns per-epoch stats."""
    import torch

    rows = encode(tokenizer, texts, max_len)
    lengths = [len(r) for r in rows]
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    optimizer = build_optimizer(
        model, lr=cfg.lr, embedding_lr=cfg.embedding_lr, weight_decay=cfg.weight_decay
    )
    scheduler = warmup_linear(
        optimizer, total_steps=steps_per_epoch * cfg.epochs, warmup_ratio=cfg.warmup_ratio
    )
    generator = torch.Generator().manual_seed(seed)
    special_ids = sorted(set(tokenizer.all_special_ids))
    mask_id = tokenizer.mask_token_id
    if mask_id is None:
        raise ValueError("the tokenizer has no mask token: cannot run masked-LM pretraining")
    pad_id = tokenizer.pad_token_id or 0
    vocab_size = len(tokenizer)
    to_device(model, device)
    model.train()
    history: list[dict[str, Any]] = []
    for epoch in range(cfg.epochs):
        started = time.perf_counter()
        batches = length_grouped_batches(lengths, cfg.batch_size, seed=seed, epoch=epoch)
        total = 0.0
        bar = tqdm(
            batches, desc=f"MLM epoch {epoch + 1}/{cfg.epochs}", disable=not progress, unit="batch"
        )
        for step, index in enumerate(bar, start=1):
            batch = collate([rows[i] for i in index], pad_id)
            masked, labels = mask_tokens(
                batch["input_ids"],
                batch["attention_mask"],
                special_ids=special_ids,
                mask_id=mask_id,
                vocab_size=vocab_size,
                probability=cfg.mask_probability,
                generator=generator,
            )
            batch["input_ids"] = masked
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = mlm_loss(model, batch, labels.to(device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total += float(loss.item())
            bar.set_postfix(loss=f"{total / step:.3f}")
        stats = {
            "epoch": epoch + 1,
            "mlm_loss": total / max(1, len(batches)),
            "steps": len(batches),
            "seconds": round(time.perf_counter() - started, 1),
        }
        log.info("MLM epoch %d: loss %.3f (%.0f s)", epoch + 1, stats["mlm_loss"], stats["seconds"])
        history.append(stats)
    return history
