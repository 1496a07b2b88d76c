"""Held-out evaluation of a trained model side by side with the TF-IDF baseline.

Why the baseline is retrained here rather than stored: it takes seconds, and
fitting it on exactly the examples the model was fine-tuned on (read from the
run's ``training.json``) keeps the comparison fair for the ``quick`` profile,
which sees only part of the train split. When that part is smaller than the
split, a second baseline fitted on the whole split is reported too.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecomstream.data.corpus import load_review_corpus, split_corpus
from ecomstream.model.metrics import bucket_names, summarize
from ecomstream.model.train import SPLIT_SEED, load_training_record

log = logging.getLogger(__name__)

DISPLAY = {
    "model": "transformer",
    "baseline": "TF-IDF char 1-3 + LR",
    "baseline_full_train": "TF-IDF + LR (full train split)",
}


def evaluate(
    model_dir: Path, out: Path, *, batch_size: int = 64, progress: bool = True
) -> dict[str, Any]:
    """Score ``model_dir`` and the baseline on the test split; write JSON, markdown, PNGs."""
    from ecomstream.model.runtime import prepare_runtime

    prepare_runtime()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ecomstream.model.baseline import baseline_proba, train_baseline
    from ecomstream.model.plots import write_plots
    from ecomstream.model.predict import predict_logits, softmax

    model_dir, out = Path(model_dir), Path(out)
    record = load_training_record(model_dir)
    data = record.get("data", {})
    split = split_corpus(load_review_corpus(), seed=data.get("split_seed", SPLIT_SEED))
    texts = [x.text for x in split.test]
    labels = [x.label for x in split.test]
    n_train = data.get("finetune_examples") or len(split.train)

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    max_len = int(record.get("max_len") or min(tokenizer.model_max_length, 512))
    t = time.perf_counter()
    logits = predict_logits(
        model,
        tokenizer,
        texts,
        max_len=max_len,
        batch_size=batch_size,
        desc="test (model)" if progress else None,
    )
    model_seconds = time.perf_counter() - t
    results: dict[str, dict[str, Any]] = {"model": summarize(texts, labels, softmax(logits))}
    results["model"]["seconds"] = round(model_seconds, 2)
    results["model"]["texts_per_s"] = round(len(texts) / model_seconds, 1)

    log.info("fitting the baseline on the same %d train examples", n_train)
    t = time.perf_counter()
    pipe = train_baseline(split.train[:n_train])
    results["baseline"] = summarize(texts, labels, baseline_proba(pipe, texts))
    results["baseline"]["train_examples"] = n_train
    results["baseline"]["seconds"] = round(time.perf_counter() - t, 2)
    if n_train < len(split.train):
        log.info("fitting a second baseline on the whole train split (%d)", len(split.train))
        pipe = train_baseline(split.train)
        results["baseline_full_train"] = summarize(texts, labels, baseline_proba(pipe, texts))
        results["baseline_full_train"]["train_examples"] = len(split.train)

    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_dir": str(model_dir),
        "profile": record.get("profile", {}).get("name"),
        "seed": record.get("seed"),
        "max_len": max_len,
        "test_examples": len(texts),
        "model_train_examples": n_train,
        "results": results,
        "delta_accuracy_vs_baseline": results["model"]["accuracy"]
        - results["baseline"]["accuracy"],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    named = {DISPLAY[k]: v for k, v in results.items()}
    figures = write_plots(named, out)
    (out / "evaluation.md").write_text(render_markdown(report, figures), encoding="utf-8")
    log.info("report written to %s", out)
    return report


def render_markdown(report: dict[str, Any], figures: list[Path]) -> str:
    """The human-readable report; figures are linked relative to the report."""
    res = report["results"]
    cols = [k for k in ("model", "baseline", "baseline_full_train") if k in res]
    head = "| metric | " + " | ".join(DISPLAY[k] for k in cols) + " |"
    sep = "| --- |" + " ---: |" * len(cols)
    lines = [
        "# Review sentiment: held-out test evaluation",
        "",
        f"- model: `{report['model_dir']}` (profile `{report['profile']}`, seed {report['seed']},"
        f" max_len {report['max_len']})",
        f"- test split: {report['test_examples']} reviews; model fine-tuned on"
        f" {report['model_train_examples']} train reviews; the baseline on the same ones",
        f"- created {report['created']}",
        "",
        head,
        sep,
    ]
    n_train = [str(res[k].get("train_examples", report["model_train_examples"])) for k in cols]
    lines.append("| train examples | " + " | ".join(n_train) + " |")
    for metric in ("accuracy", "macro_f1", "ece", "nll", "brier"):
        lines.append(f"| {metric} | " + " | ".join(f"{res[k][metric]:.4f}" for k in cols) + " |")
    lines += [
        "",
        f"Accuracy difference model - baseline: {report['delta_accuracy_vs_baseline']:+.4f}",
        "",
    ]
    lines += [
        "## Accuracy by review length (characters)",
        "",
        "| length | n | " + " | ".join(DISPLAY[k] for k in cols) + " |",
        "| --- | ---: |" + " ---: |" * len(cols),
    ]
    for b in bucket_names():
        n = res["model"]["by_length"][b]["n"]
        lines.append(
            f"| {b} | {n} | "
            + " | ".join(f"{res[k]['by_length'][b]['accuracy']:.4f}" for k in cols)
            + " |"
        )
    lines += ["", "## Confusion matrices (rows: true negative/positive; columns: predicted)", ""]
    for k in cols:
        m = res[k]["confusion_matrix"]
        lines.append(f"- {DISPLAY[k]}: `{m}`")
    lines += [
        "",
        f"Model inference on the test split: {res['model']['seconds']} s "
        f"({res['model']['texts_per_s']} reviews/s, PyTorch fp32).",
        "",
        "## Figures",
        "",
    ]
    lines += [f"![{p.stem}]({p.name})" for p in figures]
    return "\n".join(lines) + "\n"
