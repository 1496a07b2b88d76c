"""Triton python-backend model: review sentiment with ONNX Runtime + tokenizers.

This file is the committed source. Triton only loads ``<model>/<version>/model.py``;
``ecomstream triton install`` (``ecomstream.inference.repository.install_model``)
copies it into a version directory together with the artifact (``model.onnx``,
``tokenizer.json``, ``meta.json``) and ``sentiment_runtime.py`` (a copy of
``ecomstream/inference/runtime.py``: the tokenization and label logic shared with the
in-process scorer). Nothing of ``ecomstream`` is imported here.

Requests are dynamically batched by Triton: ``execute`` receives several
requests, scores all their texts in one ONNX Runtime run and answers each
request separately. A request that cannot be decoded gets its own INVALID_ARG
error; the other requests of the batch are still answered.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

HERE = Path(__file__).resolve().parent
RUNTIME_FILE = "sentiment_runtime.py"


def _load_runtime_module() -> Any:
    """Import the sibling ``sentiment_runtime.py`` by path (no reliance on sys.path)."""
    name = f"_review_sentiment_runtime_{HERE.name}"
    spec = importlib.util.spec_from_file_location(name, HERE / RUNTIME_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE / RUNTIME_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _error(message: str, code_name: str) -> Any:
    code = getattr(pb_utils.TritonError, code_name, None)
    if code is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, code)


def _strings(values: list[str], rows: int) -> np.ndarray:
    return np.array([v.encode("utf-8") for v in values], dtype=np.object_).reshape(rows, 1)


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        parameters = {
            key: value.get("string_value", "")
            for key, value in config.get("parameters", {}).items()
        }
        threads = int(parameters.get("intra_op_threads", "1") or "1")
        providers: list[Any] = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU":
            device = int(args.get("model_instance_device_id", "0"))
            providers = [("CUDAExecutionProvider", {"device_id": device}), "CPUExecutionProvider"]
        runtime = _load_runtime_module()
        self.runtime = runtime.SentimentRuntime(HERE, intra_op_threads=threads, providers=providers)
        self.meta = self.runtime.meta
        self.logger = pb_utils.Logger
        self.logger.log_info(
            f"review_sentiment: loaded {self.meta.name} {self.meta.version} "
            f"(labels {list(self.meta.labels)}, max_len {self.meta.max_len}, "
            f"quantized {self.meta.quantized}, intra-op threads {threads}, "
            f"providers {self.runtime.session.get_providers()})"
        )

    @staticmethod
    def _texts(request: Any) -> list[str]:
        tensor = pb_utils.get_input_tensor_by_name(request, "TEXT")
        if tensor is None:
            raise ValueError("input TEXT is missing")
        array = tensor.as_numpy()
        if array.ndim != 2 or array.shape[1] != 1 or array.shape[0] < 1:
            raise ValueError(f"TEXT must have shape [batch, 1], got {list(array.shape)}")
        texts = []
        for index, value in enumerate(array.reshape(-1)):
            if isinstance(value, bytes):
                try:
                    texts.append(value.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise ValueError(f"TEXT[{index}] is not valid UTF-8: {exc}") from None
            else:
                texts.append(str(value))
        return texts

    def _response(self, probabilities: np.ndarray, labels: list[str]) -> Any:
        rows = len(labels)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("PROBABILITIES", probabilities.astype(np.float32)),
                pb_utils.Tensor("LABEL", _strings(labels, rows)),
                pb_utils.Tensor("MODEL_NAME", _strings([self.meta.name] * rows, rows)),
                pb_utils.Tensor("MODEL_VERSION", _strings([self.meta.version] * rows, rows)),
            ]
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        batch: list[tuple[int, list[str]]] = []
        for index, request in enumerate(requests):
            try:
                batch.append((index, self._texts(request)))
            except Exception as exc:
                responses[index] = pb_utils.InferenceResponse(error=_error(str(exc), "INVALID_ARG"))
        texts = [text for _, request_texts in batch for text in request_texts]
        try:
            prediction = self.runtime.predict(texts) if texts else None
        except Exception as exc:
            # One bad request must not fail the others: score each request alone.
            self.logger.log_warn(
                f"review_sentiment: batch of {len(texts)} failed ({exc}); "
                "retrying request by request"
            )
            prediction = None
            for index, request_texts in batch:
                try:
                    alone = self.runtime.predict(request_texts)
                except Exception as single_exc:
                    responses[index] = pb_utils.InferenceResponse(
                        error=_error(f"inference failed: {single_exc}", "INTERNAL")
                    )
                else:
                    responses[index] = self._response(alone.probabilities, alone.labels)
        if prediction is not None:
            start = 0
            for index, request_texts in batch:
                end = start + len(request_texts)
                responses[index] = self._response(
                    prediction.probabilities[start:end], prediction.labels[start:end]
                )
                start = end
        return responses

    def finalize(self) -> None:
        self.logger.log_info("review_sentiment: finalized")
