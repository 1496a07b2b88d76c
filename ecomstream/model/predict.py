"""Batched class probabilities from a PyTorch sequence classifier.

Why its own module: fine-tuning (validation), evaluation (test) and export
(parity against ONNX Runtime) must tokenize and batch identically - truncation
to ``max_len``, padding to the longest row of each batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from ecomstream.model.batching import collate, encode, sorted_batches

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def predict_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_len: int,
    batch_size: int = 64,
    device: torch.device | None = None,
    desc: str | None = None,
) -> np.ndarray:
    """Logits ``[len(texts), num_labels]`` as float32, in the order of ``texts``."""
    import torch

    rows = encode(tokenizer, texts, max_len)
    pad_id = tokenizer.pad_token_id or 0
    device = device or next(model.parameters()).device
    out = np.zeros((len(rows), int(model.config.num_labels or 2)), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        batches = sorted_batches([len(r) for r in rows], batch_size)
        for index in tqdm(batches, desc=desc or "predict", disable=desc is None, unit="batch"):
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in index], pad_id).items()}
            out[index] = model(**batch).logits.float().cpu().numpy()
    model.train(was_training)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable.

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)
