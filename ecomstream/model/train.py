"""One training run: extend the vocabulary, MLM-pretrain, fine-tune, save, record.

Why the order matters: the vocabulary is extended *before* pretraining so that
MLM teaches the new character embeddings; the classifier is then built from
the base checkpoint (keeping its pretrained pooler, which a masked-LM model
lacks) and receives the adapted encoder weights.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecomstream.data.corpus import LABEL_NAMES, load_review_corpus, split_corpus
from ecomstream.model.profiles import TrainingProfile

log = logging.getLogger(__name__)

SPLIT_SEED = 13  # the corpus split is fixed, whatever the training seed: test stays held out
TRAINING_JSON = "training.json"


def default_run_dir(profile: str) -> Path:
    return Path("runs") / "model" / profile


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def train(
    profile: TrainingProfile,
    *,
    base: Path | None = None,
    out: Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a review-sentiment classifier into ``out``; returns the ``training.json`` record."""
    from ecomstream.model.runtime import (
        default_base_model,
        pick_device,
        prepare_runtime,
        seed_everything,
    )

    prepare_runtime()
    import torch
    from transformers import (
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    from ecomstream.model.finetune import finetune
    from ecomstream.model.pretrain import pretrain_mlm
    from ecomstream.model.vocab import extend_tokenizer, resize_embeddings

    started = time.perf_counter()
    timing: dict[str, float] = {}
    base = Path(base) if base else default_base_model()
    out = Path(out) if out else default_run_dir(profile.name)
    device = pick_device()
    seed_everything(seed)
    log.info("profile %s, seed %d, base %s, device %s", profile.name, seed, base, device)

    split = split_corpus(load_review_corpus(), seed=SPLIT_SEED)
    train_texts = [x.text for x in split.train]
    ft_train = split.train[: profile.finetune.max_examples]
    validation = split.validation[: profile.finetune.max_validation]
    mlm_texts = train_texts[: profile.pretrain.max_texts]

    t = time.perf_counter()
    base_tokenizer = AutoTokenizer.from_pretrained(str(base))
    tokenizer, extension = extend_tokenizer(base_tokenizer, train_texts, profile.min_char_freq)
    tokenizer.model_max_length = profile.max_len
    timing["vocab_s"] = time.perf_counter() - t
    log.info(
        "vocabulary %d -> %d (+%d); [UNK] rate %.3f -> %.4f",
        extension.base_size,
        extension.new_size,
        extension.added,
        extension.unk_rate_before,
        extension.unk_rate_after,
    )

    mlm_history: list[dict[str, Any]] = []
    encoder_state: dict[str, torch.Tensor] | None = None
    embedding_init: dict[str, Any]
    t = time.perf_counter()
    if profile.pretrain.epochs > 0 and mlm_texts:
        mlm = AutoModelForMaskedLM.from_pretrained(str(base))
        embedding_init = resize_embeddings(
            mlm, len(tokenizer), noise_scale=profile.embedding_noise_scale, seed=seed
        )
        mlm_history = pretrain_mlm(
            mlm,
            tokenizer,
            mlm_texts,
            profile.pretrain,
            max_len=profile.max_len,
            seed=seed,
            device=device,
            progress=progress,
        )
        encoder_state = {k: v.detach().cpu() for k, v in mlm.base_model.state_dict().items()}
        del mlm
    timing["pretrain_s"] = time.perf_counter() - t

    t = time.perf_counter()
    seed_everything(seed)  # the classifier head's init must not depend on the MLM phase
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=len(LABEL_NAMES),
        id2label=dict(enumerate(LABEL_NAMES)),
        label2id={name: i for i, name in enumerate(LABEL_NAMES)},
    )
    init = resize_embeddings(
        model, len(tokenizer), noise_scale=profile.embedding_noise_scale, seed=seed
    )
    if encoder_state is None:
        embedding_init = init
    else:
        missing, unexpected = model.base_model.load_state_dict(encoder_state, strict=False)
        log.info("adapted encoder loaded; kept from base: %s; ignored: %s", missing, unexpected)
    result = finetune(
        model,
        tokenizer,
        ft_train,
        validation,
        profile.finetune,
        max_len=profile.max_len,
        seed=seed,
        device=device,
        progress=progress,
    )
    timing["finetune_s"] = time.perf_counter() - t

    out.mkdir(parents=True, exist_ok=True)
    model.to("cpu").save_pretrained(out)
    tokenizer.save_pretrained(out)
    timing["total_s"] = time.perf_counter() - started
    record: dict[str, Any] = {
        "profile": asdict(profile),
        "seed": seed,
        "base_model": str(base),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "labels": list(LABEL_NAMES),
        "max_len": profile.max_len,
        "data": {
            "split_seed": SPLIT_SEED,
            "train_split": len(split.train),
            "validation_split": len(split.validation),
            "test_split": len(split.test),
            "mlm_texts": len(mlm_texts) if mlm_history else 0,
            "finetune_examples": len(ft_train),
            "validation_examples": len(validation),
            "selection": "first N of the seeded, shuffled split (corpus.split_corpus)",
        },
        "vocab_extension": extension.to_dict(),
        "embedding_init": embedding_init,
        "pretrain": mlm_history,
        "finetune": result.history,
        "best_epoch": result.best_epoch,
        "best_validation_accuracy": result.best_validation_accuracy,
        "stopped_early": result.stopped_early,
        "timing_s": {k: round(v, 1) for k, v in timing.items()},
        "versions": _versions(),
    }
    (out / TRAINING_JSON).write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    log.info(
        "saved %s in %.0f s (best validation accuracy %.4f at epoch %d)",
        out,
        timing["total_s"],
        result.best_validation_accuracy,
        result.best_epoch,
    )
    return record


def load_training_record(model_dir: Path) -> dict[str, Any]:
    """The run's ``training.json``, or ``{}`` for a model trained elsewhere."""
    path = Path(model_dir) / TRAINING_JSON
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))
