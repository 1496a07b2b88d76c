"""AdamW with decoupled weight decay, a faster word-embedding group, and warmup.

Why a separate embedding learning rate: the characters added to the vocabulary
start as (nearly) the same vector; at the encoder's fine-tuning rate they would
hardly move in a short run. The word-embedding matrix (tied to the MLM decoder)
therefore gets its own, larger rate. Biases and LayerNorm weights get no decay,
as in the original BERT recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


def build_optimizer(
    model: PreTrainedModel, *, lr: float, embedding_lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over three groups: word embeddings, decayed weights, undecayed weights."""
    import torch

    embedding = model.get_input_embeddings().weight
    groups: dict[str, list[torch.nn.Parameter]] = {"embed": [], "decay": [], "no_decay": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param is embedding:
            groups["embed"].append(param)
        elif name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
            groups["no_decay"].append(param)
        else:
            groups["decay"].append(param)
    param_groups: list[dict[str, Any]] = [
        {"params": groups["embed"], "lr": embedding_lr, "weight_decay": 0.0},
        {"params": groups["decay"], "lr": lr, "weight_decay": weight_decay},
        {"params": groups["no_decay"], "lr": lr, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in param_groups if g["params"]])


def warmup_linear(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_ratio`` of the steps, then linear decay to zero."""
    import torch

    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
