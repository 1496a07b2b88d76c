"""Export parity on a tiny random BERT: no training needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ecomstream.model.export import ParityThresholds, _parity_failures, export

TEXTS = [
    "很好",
    "不好，我们很差！",
    "abc def",
    "这个很好很好很好很好很好很好很好很好很好很好很好很好很好很好很好很好很好很好很好很好",
    "",
    "x",
] * 6


@pytest.fixture(scope="module")
def fp32_artifact(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifact-fp32")
    export(tiny_bert_dir, out, quantize=False, sample_texts=TEXTS, progress=False)
    return out


def test_artifact_layout_and_meta(fp32_artifact: Path) -> None:
    assert sorted(p.name for p in fp32_artifact.iterdir()) == [
        "meta.json",
        "model.onnx",
        "tokenizer.json",
    ]
    meta = json.loads((fp32_artifact / "meta.json").read_text())
    assert meta["name"] == "review_sentiment"
    assert meta["version"] == 1
    assert meta["labels"] == ["negative", "positive"]
    assert meta["max_len"] == 32
    assert meta["quantized"] is False
    assert meta["parity"]["passed"] is True
    assert meta["parity"]["tokenizer_ids_identical"] is True
    assert meta["parity"]["fp32"]["max_abs_logit_diff"] < 1e-4
    assert meta["tokenization"]["truncation"]["max_length"] == 32


def test_onnx_signature_is_dynamic(fp32_artifact: Path) -> None:
    model = onnx.load(str(fp32_artifact / "model.onnx"))
    inputs = {i.name: i for i in model.graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    for tensor in inputs.values():
        assert tensor.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = tensor.type.tensor_type.shape.dim
        assert len(dims) == 2 and all(d.dim_param and not d.dim_value for d in dims)
    (out,) = model.graph.output
    assert out.name == "logits"
    assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.shape.dim[1].dim_value == 2


def test_tokenizer_json_and_onnx_match_pytorch(tiny_bert_dir: Path, fp32_artifact: Path) -> None:
    hf = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    tk = Tokenizer.from_file(str(fp32_artifact / "tokenizer.json"))
    session = ort.InferenceSession(str(fp32_artifact / "model.onnx"))
    for batch in (TEXTS[:1], TEXTS[:4], TEXTS[:7]):  # several batch and sequence sizes
        ref = hf(batch, truncation=True, max_length=32, padding=True, return_tensors="np")
        encs = tk.encode_batch(batch)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        np.testing.assert_array_equal(ids, ref["input_ids"])
        np.testing.assert_array_equal(mask, ref["attention_mask"])
        assert ids.shape[1] <= 32
        (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
        with torch.inference_mode():
            expected = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-4)
        assert logits.dtype == np.float32 and logits.shape == (len(batch), 2)


def test_int8_export_via_cli(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from ecomstream.cli import main

    out = tmp_path / "artifact"
    result = CliRunner().invoke(
        main,
        [
            "model",
            "export",
            "--model",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--version",
            "3",
            "--sample-size",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["quantized"] is True and meta["version"] == 3
    assert meta["parity"]["int8"]["label_agreement"] >= 0.99
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}

    # A text's scores never depend on the batch it arrives in (replays rely on it).
    from ecomstream.inference.runtime import SentimentRuntime

    runtime = SentimentRuntime(out)
    assert runtime.row_wise
    batch = runtime.predict(TEXTS[:6]).probabilities
    alone = np.concatenate([runtime.predict([t]).probabilities for t in TEXTS[:6]])
    assert np.array_equal(batch, alone)


def test_parity_failures_are_reported() -> None:
    parity = {
        "tokenizer_ids_identical": True,
        "fp32": {"max_abs_logit_diff": 2e-4},
        "int8": {"label_agreement": 0.98, "mean_abs_prob_diff": 0.01},
    }
    failures = _parity_failures(parity, ParityThresholds(), quantize=True)
    assert len(failures) == 2
    assert "fp32 logits" in failures[0] and "int8 label agreement" in failures[1]
    assert (
        _parity_failures(parity, ParityThresholds(fp32_atol=1e-3, int8_min_agreement=0.9), True)
        == []
    )
    parity["tokenizer_ids_identical"] = False
    assert _parity_failures(parity, ParityThresholds(fp32_atol=1e-3), False) == [
        "tokenizer.json ids differ from the HF tokenizer's"
    ]


def test_cli_installs_into_a_triton_repo(tiny_bert_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ecomstream.inference.repository")
    from ecomstream.cli import main

    repo = tmp_path / "repo"
    result = CliRunner().invoke(
        main,
        [
            "model",
            "export",
            "--model",
            str(tiny_bert_dir),
            "--out",
            str(tmp_path / "a"),
            "--no-quantize",
            "--triton-repo",
            str(repo),
            "--version",
            "2",
            "--sample-size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    version_dir = repo / "review_sentiment" / "2"
    for name in ("model.onnx", "tokenizer.json", "meta.json"):
        assert (version_dir / name).is_file()
    assert json.loads((version_dir / "meta.json").read_text())["version"] == 2
