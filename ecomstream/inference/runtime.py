"""Tokenize, run the ONNX sentiment model, turn logits into labels: the one copy of that logic.

Why one file with no ``ecomstream`` imports: the Triton python backend runs
``model.py`` inside Triton's stub process, which cannot import our package.
``install_model`` copies this file next to ``model.py`` (as
``sentiment_runtime.py``) and the in-process :class:`~ecomstream.inference.onnx.OnnxScorer`
imports it directly, so served and in-process labels come from the same code.

Keep it importable with only numpy, onnxruntime and tokenizers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"
ARTIFACT_FILES = (MODEL_FILE, TOKENIZER_FILE, META_FILE)
REQUIRED_META_KEYS = ("name", "version", "labels", "max_len")


@dataclass(frozen=True)
class ModelMeta:
    """The artifact's ``meta.json``: identity, label order and tokenization length."""

    name: str
    version: str
    labels: tuple[str, ...]
    max_len: int
    quantized: bool = False

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelMeta:
        missing = [key for key in REQUIRED_META_KEYS if key not in raw]
        if missing:
            raise ValueError(f"meta.json lacks {missing}")
        labels = tuple(str(label) for label in raw["labels"])
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"meta.json labels must be at least two distinct names: {labels}")
        max_len = int(raw["max_len"])
        if max_len < 2:
            raise ValueError(f"meta.json max_len must be >= 2, got {max_len}")
        return cls(
            name=str(raw["name"]),
            version=str(raw["version"]),
            labels=labels,
            max_len=max_len,
            quantized=bool(raw.get("quantized", False)),
        )

    @classmethod
    def load(cls, artifact_dir: str | Path) -> ModelMeta:
        path = Path(artifact_dir) / META_FILE
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def softmax(logits: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Row-wise softmax, computed in float64 and returned as float32.

    >>> softmax(np.array([[0.0, 0.0], [0.0, 1000.0]])).tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def labels_for(probabilities: npt.NDArray[Any], labels: Sequence[str]) -> list[str]:
    """The label of each row: the first label with the highest probability.

    >>> labels_for(np.array([[0.2, 0.8], [0.5, 0.5]]), ["negative", "positive"])
    ['positive', 'negative']
    """
    return [labels[int(i)] for i in np.argmax(probabilities, axis=1)]


@dataclass(frozen=True)
class Prediction:
    """Probabilities (float32, one row per text, columns in ``labels`` order) and labels."""

    probabilities: npt.NDArray[np.float32]
    labels: list[str]


class SentimentRuntime:
    """An artifact directory loaded for inference: tokenizer + ONNX Runtime session + meta.

    ``intra_op_threads`` defaults to 1: on a few shared cores more threads per
    instance made latency 10-100x worse (FIELD_NOTES, Triton pitfall 5).

    ``row_wise`` (default: when the model is int8-quantized) runs each text
    alone. Dynamic quantization scales activations over the whole input
    tensor, so in a padded batch a text's label depended on its batch-mates
    (about 1 in 200 flipped): row by row, a text always gets the same label,
    which replays and served-vs-in-process checks rely on. On CPU it costs
    nothing measurable (no padding; 76 vs 69 texts/s batched, quick model).
    """

    def __init__(
        self,
        artifact_dir: str | Path,
        *,
        intra_op_threads: int = 1,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        row_wise: bool | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.artifact_dir = Path(artifact_dir)
        self.meta = ModelMeta.load(self.artifact_dir)
        self.row_wise = self.meta.quantized if row_wise is None else row_wise
        self.tokenizer = Tokenizer.from_file(str(self.artifact_dir / TOKENIZER_FILE))
        truncation = self.tokenizer.truncation
        if truncation is None or int(truncation.get("max_length", 0)) > self.meta.max_len:
            self.tokenizer.enable_truncation(max_length=self.meta.max_len)
        self.pad_id = self._pad_id()
        # Padding is done here (to the longest text of each batch), never by the tokenizer.
        self.tokenizer.no_padding()

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = set(ort.get_available_providers())
        chosen = [
            p
            for p in (providers or ["CPUExecutionProvider"])
            if (p if isinstance(p, str) else p[0]) in available
        ]
        self.session = ort.InferenceSession(
            str(self.artifact_dir / MODEL_FILE),
            sess_options=options,
            providers=chosen or ["CPUExecutionProvider"],
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        for required in ("input_ids", "attention_mask"):
            if required not in self.input_names:
                raise ValueError(f"model.onnx has no input {required!r}: {self.input_names}")
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = "logits" if "logits" in outputs else outputs[0]

    def _pad_id(self) -> int:
        padding = self.tokenizer.padding
        if padding and padding.get("pad_id") is not None:
            return int(padding["pad_id"])
        pad = self.tokenizer.token_to_id("[PAD]")
        return int(pad) if pad is not None else 0

    def encode(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        """Token ids and attention mask, truncated to ``max_len``, padded to the longest text."""
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max((len(e.ids) for e in encodings), default=0) or 1
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds

    def predict(self, texts: Sequence[str]) -> Prediction:
        """Probabilities and labels for ``texts`` (one ONNX Runtime run, or one per text)."""
        if not texts:
            empty = np.zeros((0, len(self.meta.labels)), dtype=np.float32)
            return Prediction(empty, [])
        if self.row_wise and len(texts) > 1:
            logits = np.concatenate([self._logits([text]) for text in texts])
        else:
            logits = self._logits(texts)
        if logits.ndim != 2 or logits.shape != (len(texts), len(self.meta.labels)):
            raise ValueError(
                f"model output {self.output_name!r} has shape {logits.shape}, "
                f"expected ({len(texts)}, {len(self.meta.labels)})"
            )
        probabilities = softmax(logits)
        return Prediction(probabilities, labels_for(probabilities, self.meta.labels))

    def _logits(self, texts: Sequence[str]) -> npt.NDArray[Any]:
        (logits,) = self.session.run([self.output_name], self.encode(texts))
        return np.asarray(logits)
