"""Export a trained classifier to the serving artifact: ONNX (+ int8), tokenizer, meta.

Artifact directory (the contract with Triton serving)::

    model.onnx      inputs input_ids, attention_mask: int64 [batch, sequence]
                    output logits: float32 [batch, 2]; dynamic int8 unless --no-quantize
    tokenizer.json  ``tokenizers`` file that truncates to max_len and pads to the
                    longest text of the batch, exactly as training did
    meta.json       name, version, labels, max_len, quantized, tokenization,
                    provenance and the parity figures measured here

Why the parity check lives in the export: an artifact that disagrees with the
model it came from must never reach the model repository. fp32 ONNX must match
PyTorch's logits within ``fp32_atol``; int8 must agree on the label for at
least ``int8_min_agreement`` of a validation sample. Both are recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ecomstream.data.corpus import LABEL_NAMES, load_review_corpus, split_corpus
from ecomstream.model.predict import softmax
from ecomstream.model.train import SPLIT_SEED, load_training_record

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

MODEL_NAME = "review_sentiment"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
PARITY_BATCH = 32


def default_export_dir() -> Path:
    return Path("runs") / "export" / MODEL_NAME


@dataclass(frozen=True)
class ParityThresholds:
    fp32_atol: float = 1e-4  # max |logit difference|, ONNX fp32 vs PyTorch
    int8_min_agreement: float = 0.99  # share of equal labels, int8 vs PyTorch
    int8_max_mean_prob_diff: float = 0.03  # mean |p(positive) difference|


class ParityError(RuntimeError):
    """The exported model disagrees with the PyTorch model beyond the thresholds."""


def _logits_module(model: PreTrainedModel) -> torch.nn.Module:
    """A module with the serving signature: (input_ids, attention_mask) -> logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: PreTrainedModel) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    return Logits(model).eval()


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path) -> str:
    import torch

    try:
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamo=True,
            verbose=False,
            external_data=False,
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
        )
        exporter = "torch.onnx dynamo"
    except Exception as exc:  # the fallback exporter covers what dynamo cannot trace
        log.warning("dynamo export failed (%s); falling back to the TorchScript exporter", exc)
        axes = {
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            OUTPUT_NAME: {0: "batch"},
        }
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamo=False,
            opset_version=17,
            dynamic_axes=axes,
        )
        exporter = "torch.onnx torchscript"
    return exporter


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporters warn and log at INFO about every graph pass; keep the CLI readable."""
    names = ("onnx_ir", "onnxscript", "torch.onnx", "torch.export", "torch._dynamo")
    levels = {n: logging.getLogger(n).level for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in names:
            logging.getLogger(n).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


def export_onnx(model: PreTrainedModel, path: Path, example: dict[str, torch.Tensor]) -> str:
    """Write a single-file fp32 ONNX with dynamic batch and sequence axes; returns the exporter.

    The dynamo exporter is tried first (the supported path in torch 2.x); the
    TorchScript exporter is the fallback for architectures it cannot trace.
    """
    import onnx

    module = _logits_module(model)
    args = (example["input_ids"], example["attention_mask"])
    with _quiet_exporter():
        exporter = _export(module, args, path)
    model.eval()
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path), save_as_external_data=False)  # one self-contained file
    for stray in path.parent.glob(path.name + ".data"):
        stray.unlink()
    return exporter


QUANTIZATION = (
    "onnxruntime.quantization.quantize_dynamic: MatMul weights QInt8 per output channel, "
    "activations uint8 at run time; embedding tables stay fp32"
)


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization (weights int8 offline, activations at run time).

    Per-channel weight scales and fp32 embeddings: on the quick model the
    default (per-tensor, Gather quantized too) flipped ~2% of validation labels
    and moved probabilities by 0.023 on average; this setting flips ~0.5% with
    a 0.008 mean shift, still ~2x faster than fp32 on the CPU.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # the quantizer logs every tensor at INFO on the root logger
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        logging.disable(logging.NOTSET)


def serving_tokenizer(tokenizer: PreTrainedTokenizerBase, max_len: int) -> Tokenizer:
    """The fast backend with training's tokenization baked in: truncate, pad to longest."""
    from tokenizers import Tokenizer

    tk = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    tk.enable_truncation(max_length=max_len, strategy="longest_first", direction="right")
    tk.enable_padding(
        direction="right",
        pad_id=tokenizer.pad_token_id or 0,
        pad_type_id=0,
        pad_token=str(tokenizer.pad_token or "[PAD]"),
    )
    return tk


def _session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _batches(texts: Sequence[str]) -> list[list[str]]:
    return [list(texts[i : i + PARITY_BATCH]) for i in range(0, len(texts), PARITY_BATCH)]


def check_parity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    serving_tk: Tokenizer,
    sessions: dict[str, Any],
    texts: Sequence[str],
    max_len: int,
    progress: bool = True,
    labels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Compare tokenization and logits: HF tokenizer + PyTorch vs tokenizer.json + ORT.

    With ``labels``, each variant's accuracy on the sample is reported too.
    """
    import torch

    ref: list[np.ndarray] = []
    onnx_out: dict[str, list[np.ndarray]] = {k: [] for k in sessions}
    same_ids = True
    model.eval()
    for batch in tqdm(_batches(texts), desc="parity", disable=not progress, unit="batch"):
        hf = tokenizer(
            batch, truncation=True, max_length=max_len, padding=True, return_tensors="np"
        )
        encs = serving_tk.encode_batch(batch)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        same_ids &= ids.shape == hf["input_ids"].shape and bool(
            (ids == hf["input_ids"]).all() and (mask == hf["attention_mask"]).all()
        )
        with torch.inference_mode():
            ref.append(
                model(
                    input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
                ).logits.numpy()
            )
        for name, sess in sessions.items():
            onnx_out[name].append(
                sess.run([OUTPUT_NAME], {"input_ids": ids, "attention_mask": mask})[0]
            )
    torch_logits = np.concatenate(ref)
    torch_probs = softmax(torch_logits)
    report: dict[str, Any] = {"sample": len(texts), "tokenizer_ids_identical": same_ids}
    y = np.asarray(labels) if labels is not None else None
    if y is not None:
        report["pytorch_accuracy"] = float((torch_logits.argmax(1) == y).mean())
    for name, chunks in onnx_out.items():
        logits = np.concatenate(chunks)
        probs = softmax(logits)
        pdiff = np.abs(probs[:, 1] - torch_probs[:, 1])
        report[name] = {
            "max_abs_logit_diff": float(np.abs(logits - torch_logits).max()),
            "label_agreement": float((logits.argmax(1) == torch_logits.argmax(1)).mean()),
            "max_abs_prob_diff": float(pdiff.max()),
            "mean_abs_prob_diff": float(pdiff.mean()),
        }
        if y is not None:
            report[name]["accuracy"] = float((logits.argmax(1) == y).mean())
    return report


def benchmark(
    sessions: dict[str, Any], serving_tk: Tokenizer, texts: Sequence[str]
) -> dict[str, Any]:
    """Reviews per second through ORT (tokenization included), batches of 32, 2 threads."""
    out: dict[str, Any] = {"batch_size": PARITY_BATCH, "texts": len(texts), "intra_op_threads": 2}
    for name, sess in sessions.items():
        started = time.perf_counter()
        for batch in _batches(texts):
            encs = serving_tk.encode_batch(batch)
            feeds = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            }
            sess.run([OUTPUT_NAME], feeds)
        out[f"{name}_reviews_per_s"] = round(len(texts) / (time.perf_counter() - started), 1)
    if "fp32" in sessions and "int8" in sessions:
        out["int8_speedup"] = round(out["int8_reviews_per_s"] / out["fp32_reviews_per_s"], 2)
    return out


def export(
    model_dir: Path,
    out: Path,
    *,
    quantize: bool = True,
    version: int = 1,
    name: str = MODEL_NAME,
    sample_size: int = 512,
    thresholds: ParityThresholds | None = None,
    sample_texts: Sequence[str] | None = None,
    sample_labels: Sequence[int] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the artifact directory ``out`` from ``model_dir``; returns ``meta.json``'s content.

    Raises :class:`ParityError` (after writing the files, for inspection) when
    the exported model disagrees with PyTorch beyond ``thresholds``.
    """
    from ecomstream.model.runtime import prepare_runtime

    prepare_runtime()
    import onnx
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    thresholds = thresholds or ParityThresholds()
    model_dir, out = Path(model_dir), Path(out)
    record = load_training_record(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    max_len = int(record.get("max_len") or min(tokenizer.model_max_length, 512))
    if sample_texts is None:
        split = split_corpus(
            load_review_corpus(), seed=record.get("data", {}).get("split_seed", SPLIT_SEED)
        )
        sample_texts = [x.text for x in split.validation[:sample_size]]
        sample_labels = [x.label for x in split.validation[:sample_size]]

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("model.onnx", "tokenizer.json", "meta.json"):
        (out / stale).unlink(missing_ok=True)
    serving_tk = serving_tokenizer(tokenizer, max_len)
    serving_tk.save(str(out / "tokenizer.json"))
    example = serving_tk.encode_batch(list(sample_texts[:2]) or ["好", "差"])
    import torch

    feeds = {
        "input_ids": torch.tensor([e.ids for e in example], dtype=torch.long),
        "attention_mask": torch.tensor([e.attention_mask for e in example], dtype=torch.long),
    }
    with tempfile.TemporaryDirectory(prefix="ecomstream-export-") as tmp:
        fp32_path, int8_path = Path(tmp) / "model.fp32.onnx", Path(tmp) / "model.int8.onnx"
        t = time.perf_counter()
        exporter = export_onnx(model, fp32_path, feeds)
        log.info("ONNX export (%s) in %.1f s", exporter, time.perf_counter() - t)
        sessions = {"fp32": _session(fp32_path)}
        if quantize:
            quantize_int8(fp32_path, int8_path)
            sessions["int8"] = _session(int8_path)
        parity = check_parity(
            model, tokenizer, serving_tk, sessions, sample_texts, max_len, progress, sample_labels
        )
        speed = benchmark(sessions, serving_tk, sample_texts)
        sizes = {
            k: p.stat().st_size for k, p in (("fp32", fp32_path), ("int8", int8_path)) if p.exists()
        }
        opset = next(
            (
                o.version
                for o in onnx.load(str(fp32_path)).opset_import
                if o.domain in ("", "ai.onnx")
            ),
            None,
        )
        shutil.copyfile(int8_path if quantize else fp32_path, out / "model.onnx")

    failures = _parity_failures(parity, thresholds, quantize)
    profile = record.get("profile", {})
    meta: dict[str, Any] = {
        "name": name,
        "version": version,
        "labels": list(LABEL_NAMES),
        "max_len": max_len,
        "quantized": quantize,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_from": {
            "model_dir": str(model_dir.resolve()),
            "profile": profile.get("name"),
            "seed": record.get("seed"),
            "trained": record.get("created"),
            "base_model": record.get("base_model"),
            "best_validation_accuracy": record.get("best_validation_accuracy"),
        },
        "onnx": {
            "file": "model.onnx",
            "exporter": exporter,
            "opset": opset,
            "inputs": {n: {"dtype": "int64", "shape": ["batch", "sequence"]} for n in INPUT_NAMES},
            "outputs": {OUTPUT_NAME: {"dtype": "float32", "shape": ["batch", len(LABEL_NAMES)]}},
            "quantization": QUANTIZATION if quantize else None,
            "bytes": sizes,
        },
        "tokenization": {
            "file": "tokenizer.json",
            "library": "tokenizers",
            "call": "Tokenizer.from_file(path).encode_batch(texts) (truncation and padding "
            "are configured inside tokenizer.json)",
            "truncation": {"max_length": max_len, "side": "right"},
            "padding": {
                "strategy": "longest in batch",
                "side": "right",
                "pad_id": tokenizer.pad_token_id or 0,
            },
            "special_tokens": f"{tokenizer.cls_token} text {tokenizer.sep_token}",
            "lowercase": bool(getattr(tokenizer, "do_lower_case", True)),
            "token_type_ids": "not an input: the model uses zeros",
            "probabilities": "softmax(logits) over labels, in label order",
        },
        "parity": {**parity, "thresholds": asdict(thresholds), "passed": not failures},
        "benchmark": speed,
    }
    (out / "meta.json").write_text(
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if failures:
        raise ParityError("; ".join(failures))
    log.info("artifact written to %s", out)
    return meta


def _parity_failures(parity: dict[str, Any], th: ParityThresholds, quantize: bool) -> list[str]:
    failures = []
    if not parity["tokenizer_ids_identical"]:
        failures.append("tokenizer.json ids differ from the HF tokenizer's")
    if parity["fp32"]["max_abs_logit_diff"] > th.fp32_atol:
        failures.append(
            f"fp32 logits differ by {parity['fp32']['max_abs_logit_diff']:.2e} > {th.fp32_atol:.0e}"
        )
    if quantize:
        q = parity["int8"]
        if q["label_agreement"] < th.int8_min_agreement:
            failures.append(
                f"int8 label agreement {q['label_agreement']:.4f} < {th.int8_min_agreement}"
            )
        if q["mean_abs_prob_diff"] > th.int8_max_mean_prob_diff:
            failures.append(
                f"int8 mean prob diff {q['mean_abs_prob_diff']:.4f} > {th.int8_max_mean_prob_diff}"
            )
    return failures
