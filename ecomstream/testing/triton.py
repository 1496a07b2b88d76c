"""Pytest plugin: a tiny random sentiment model, a Triton repository holding it, a real Triton.

Fixtures:
    ``tiny_sentiment_artifact`` (session): an artifact directory in the export
    format (``model.onnx``, ``tokenizer.json``, ``meta.json``) of a tiny,
    randomly initialised BERT classifier whose vocabulary is the review
    corpus' most frequent characters. Cached under ``.pytest_cache`` keyed by
    the builder's source and library versions, so torch is only imported when
    the cache is cold.
    ``triton_model_repo`` (session): a temporary model repository with that
    artifact installed as ``review_sentiment`` version 1 (default batching).
    ``triton_server`` (session): a started :class:`TritonServer` on free ports
    in a temporary data dir, stopped by PID at the end of the session.
    ``triton_server_factory`` (function): make extra servers (restart and
    crash tests); every one is stopped by PID at teardown.

Serving tests therefore never depend on a trained model. torch/transformers
are imported inside the builder, so loading this plugin costs nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from ecomstream.inference.repository import install_model
from ecomstream.inference.runtime import ARTIFACT_FILES
from ecomstream.launchers.process import find_free_port
from ecomstream.launchers.triton import TritonError, TritonServer, triton_dist

__all__ = [
    "TINY_MODEL_NAME",
    "build_tiny_sentiment_artifact",
    "free_ports",
    "sample_review_texts",
    "tiny_sentiment_artifact",
    "triton_model_repo",
    "triton_server",
    "triton_server_factory",
]

TINY_MODEL_NAME = "tiny-random-bert"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ASCII_PIECES = "abcdefghijklmnopqrstuvwxyz0123456789"


def _corpus_characters(limit: int) -> list[str]:
    from ecomstream.data.corpus import load_review_corpus

    corpus = load_review_corpus()
    counts = Counter(ch for text in corpus.positive + corpus.negative for ch in text.lower())
    chars = [ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [ch for ch in chars if not ch.isspace()][:limit]


def build_tiny_sentiment_artifact(
    out_dir: Path,
    *,
    seed: int = 0,
    max_len: int = 64,
    vocab_chars: int = 1500,
    logit_spread: float = 3.0,
) -> Path:
    """Write a tiny random BERT sentiment artifact (export format) into ``out_dir``.

    A random head gives nearly the same probabilities to every text; it is
    rescaled (see :func:`_spread_labels`) so that corpus texts get both labels
    with logit differences of about ``logit_spread``: labels then never hinge
    on float noise.
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification

    out_dir.mkdir(parents=True, exist_ok=True)
    tokens = list(SPECIAL_TOKENS)
    for piece in [*_corpus_characters(vocab_chars), *ASCII_PIECES]:
        if piece not in tokens:
            tokens.append(piece)
    tokens += [f"##{ch}" for ch in ASCII_PIECES]
    vocab = {token: index for index, token in enumerate(tokens)}

    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]")
    tokenizer.save(str(out_dir / "tokenizer.json"))

    torch.manual_seed(seed)
    options: dict[str, Any] = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": max_len,
        "num_labels": 2,
        "pad_token_id": vocab["[PAD]"],
    }
    config = BertConfig(**options)
    model = BertForSequenceClassification(config).eval()
    _spread_labels(model, tokenizer, logit_spread)

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    wrapper = LogitsOnly(model).eval()
    example = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: ~0.3 s for this model; dynamo export takes ~9 s here.
        torch.onnx.export(
            wrapper,
            example,
            str(out_dir / "model.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    meta = {
        "name": TINY_MODEL_NAME,
        "version": f"seed{seed}",
        "labels": ["negative", "positive"],
        "max_len": max_len,
        "quantized": False,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir


def _spread_labels(model: Any, tokenizer: Any, spread: float) -> None:
    """Rescale the classifier: logit differences on corpus texts get median 0, std ``spread``."""
    import numpy as np
    import torch

    from ecomstream.data.corpus import load_review_corpus

    corpus = load_review_corpus()
    texts = [*corpus.positive[:100], *corpus.negative[:100]]
    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
        diff = logits[:, 1] - logits[:, 0]
        scale = spread / max(float(np.std(diff)), 1e-6)
        model.classifier.weight.mul_(scale)
        model.classifier.bias.mul_(scale)
        model.classifier.bias[1] -= scale * float(np.median(diff))


def _builder_key() -> str:
    digest = hashlib.sha256(inspect.getsource(build_tiny_sentiment_artifact).encode())
    for package in ("torch", "transformers", "tokenizers", "onnxruntime", "snownlp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()[:16]


def cached_tiny_sentiment_artifact(cache_root: Path) -> Path:
    """The tiny artifact under ``cache_root/<key>``, built (atomically) when missing."""
    target = cache_root / _builder_key()
    if all((target / name).is_file() for name in ARTIFACT_FILES):
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=".build-"))
    try:
        build_tiny_sentiment_artifact(staging)
        try:
            staging.rename(target)
        except OSError:  # built concurrently by another session: use theirs
            if not all((target / name).is_file() for name in ARTIFACT_FILES):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def sample_review_texts(n: int = 40) -> list[str]:
    """Corpus reviews of both labels plus awkward inputs (empty, long, mixed scripts, emoji)."""
    from ecomstream.data.corpus import load_review_corpus

    corpus = load_review_corpus()
    half = max(n // 2, 1)
    texts = [*corpus.positive[:half], *corpus.negative[:half]]
    texts += [
        "",
        "   ",
        "很好" * 400,
        "Great phone, terrible battery!! 电池不行 😡",
        "ünïcödé ascii mix 12345",
    ]
    return texts


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1."""
    ports: list[int] = []
    while len(ports) < count:
        port = find_free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _require_triton() -> None:
    try:
        triton_dist()
    except TritonError as exc:
        pytest.skip(f"Triton cannot run here: {exc}")


@pytest.fixture(scope="session")
def tiny_sentiment_artifact(request: pytest.FixtureRequest) -> Path:
    """A tiny random BERT sentiment artifact (model.onnx, tokenizer.json, meta.json)."""
    cache_root = Path(request.config.cache.mkdir("ecomstream_tiny_sentiment"))
    target = cache_root / _builder_key()
    if not all((target / name).is_file() for name in ARTIFACT_FILES):
        pytest.importorskip("torch", reason="building the tiny model needs torch")
        pytest.importorskip("transformers", reason="building the tiny model needs transformers")
    return cached_tiny_sentiment_artifact(cache_root)


@pytest.fixture(scope="session")
def triton_model_repo(
    tiny_sentiment_artifact: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A model repository with the tiny artifact installed as ``review_sentiment`` version 1."""
    repo = tmp_path_factory.mktemp("triton_repo")
    install_model(tiny_sentiment_artifact, repo, version=1)
    return repo


def _new_server(repo: Path, data_dir: Path, **kwargs: Any) -> TritonServer:
    http, grpc, metrics = free_ports(3)
    return TritonServer(
        repo, data_dir, http_port=http, grpc_port=grpc, metrics_port=metrics, **kwargs
    )


@pytest.fixture(scope="session")
def triton_server(
    triton_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """A real Triton serving ``triton_model_repo`` for the whole session; stopped by PID."""
    _require_triton()
    server = _new_server(triton_model_repo, tmp_path_factory.mktemp("triton_data"))
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def triton_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., TritonServer]]:
    """``make(repo, **kwargs)``: an unstarted TritonServer on free ports; stopped at teardown."""
    _require_triton()
    servers: list[TritonServer] = []

    def make(repo: Path, **kwargs: Any) -> TritonServer:
        server = _new_server(repo, tmp_path_factory.mktemp("triton_data"), **kwargs)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
