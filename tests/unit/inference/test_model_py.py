"""The python-backend model.py, run against a stand-in for ``triton_python_backend_utils``.

Triton itself is exercised in tests/integration/test_triton.py; here the
per-request error handling is checked without a server.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ecomstream.inference.repository import install_model
from ecomstream.inference.runtime import SentimentRuntime


class FakeTensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name = name
        self.array = array

    def as_numpy(self) -> np.ndarray:
        return self.array


class FakeError:
    INVALID_ARG = "INVALID_ARG"
    INTERNAL = "INTERNAL"

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        self.message = message
        self.code = code


class FakeResponse:
    def __init__(self, output_tensors: list[FakeTensor] | None = None, error: Any = None) -> None:
        self.outputs = {t.name: t.array for t in output_tensors or []}
        self.error = error


class FakeRequest:
    def __init__(self, texts: list[bytes] | None) -> None:
        self.texts = texts


def fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = FakeTensor  # type: ignore[attr-defined]
    module.TritonError = FakeError  # type: ignore[attr-defined]
    module.InferenceResponse = FakeResponse  # type: ignore[attr-defined]

    def get_input(request: FakeRequest, name: str) -> FakeTensor | None:
        if request.texts is None:
            return None
        return FakeTensor(name, np.array(request.texts, dtype=np.object_).reshape(-1, 1))

    module.get_input_tensor_by_name = get_input  # type: ignore[attr-defined]
    module.Logger = types.SimpleNamespace(  # type: ignore[attr-defined]
        log_info=lambda msg: None, log_warn=lambda msg: None
    )
    return module


@pytest.fixture
def model(
    tiny_sentiment_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    version_dir = install_model(tiny_sentiment_artifact, tmp_path, version=1)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_pb_utils())
    spec = importlib.util.spec_from_file_location("served_model_py", version_dir / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    instance = module.TritonPythonModel()
    config = {"parameters": {"intra_op_threads": {"string_value": "1"}}}
    instance.initialize({"model_config": json.dumps(config), "model_instance_kind": "CPU"})
    yield instance
    instance.finalize()


def test_each_request_gets_its_own_rows(model: Any, tiny_sentiment_artifact: Path) -> None:
    texts = ["很好", "太差了，不推荐", "一般般", ""]
    requests = [
        FakeRequest([t.encode() for t in texts[:1]]),
        FakeRequest([t.encode() for t in texts[1:]]),
    ]
    responses = model.execute(requests)
    expected = SentimentRuntime(tiny_sentiment_artifact).predict(texts)
    assert [r.error for r in responses] == [None, None]
    probabilities = np.concatenate([r.outputs["PROBABILITIES"] for r in responses])
    assert np.allclose(probabilities, expected.probabilities, atol=1e-6)
    labels = [x.decode() for r in responses for x in r.outputs["LABEL"].reshape(-1)]
    assert labels == expected.labels
    assert responses[1].outputs["MODEL_NAME"].shape == (3, 1)
    assert responses[1].outputs["MODEL_VERSION"][0, 0] == b"seed0"


def test_undecodable_or_missing_input_fails_only_that_request(model: Any) -> None:
    responses = model.execute(
        [FakeRequest([b"ok"]), FakeRequest([b"\xff\xfe"]), FakeRequest(None), FakeRequest([b"x"])]
    )
    assert responses[0].error is None and responses[3].error is None
    assert responses[1].error.code == "INVALID_ARG" and "UTF-8" in responses[1].error.message
    assert responses[2].error.code == "INVALID_ARG" and "missing" in responses[2].error.message


def test_a_failing_batch_is_retried_request_by_request(
    model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_predict = model.runtime.predict

    def predict(texts: list[str]) -> Any:
        if "poison" in texts:
            raise RuntimeError("kernel failure")
        return real_predict(texts)

    monkeypatch.setattr(model.runtime, "predict", predict)
    responses = model.execute(
        [FakeRequest([b"good"]), FakeRequest([b"poison"]), FakeRequest([b"x"])]
    )
    assert responses[0].error is None and responses[2].error is None
    assert responses[1].error.code == "INTERNAL"
    assert "kernel failure" in responses[1].error.message
