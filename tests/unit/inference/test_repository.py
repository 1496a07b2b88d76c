"""Installing an artifact into a Triton model repository; the committed repo stays in sync."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from ecomstream.inference import repository, runtime
from ecomstream.inference.repository import (
    COMMITTED_REPO,
    MODEL_SOURCE,
    install_model,
    installed_versions,
    render_config,
)
from ecomstream.inference.settings import ScoringSettings


def test_committed_config_is_the_default_render() -> None:
    committed = (COMMITTED_REPO / "review_sentiment" / "config.pbtxt").read_text()
    assert committed == render_config()


def test_render_config_options() -> None:
    text = render_config(
        instance_kind="KIND_GPU",
        instance_count=2,
        max_batch_size=16,
        max_queue_delay_us=500,
        intra_op_threads=2,
    )
    assert "max_batch_size: 16" in text
    assert "preferred_batch_size: [ 8, 16 ]" in text
    assert "max_queue_delay_microseconds: 500" in text
    assert "{ kind: KIND_GPU, count: 2 }" in text
    assert 'string_value: "2"' in text
    assert "preferred_batch_size" not in render_config(preferred_batch_sizes=[])
    with pytest.raises(ValueError):
        render_config(max_batch_size=8, preferred_batch_sizes=[16])
    with pytest.raises(ValueError):
        render_config(instance_kind="KIND_TPU")  # type: ignore[arg-type]


def test_install_model_writes_a_version_and_the_config(
    tiny_sentiment_artifact: Path, tmp_path: Path
) -> None:
    version_dir = install_model(
        tiny_sentiment_artifact, tmp_path, version=3, instance_count=2, max_queue_delay_us=100
    )
    assert version_dir == tmp_path / "review_sentiment" / "3"
    names = {p.name for p in version_dir.iterdir()}
    assert {
        "model.onnx",
        "tokenizer.json",
        "meta.json",
        "model.py",
        "sentiment_runtime.py",
    } <= names
    assert (version_dir / "model.py").read_text() == MODEL_SOURCE.read_text()
    assert (version_dir / "sentiment_runtime.py").read_text() == Path(runtime.__file__).read_text()
    config = (tmp_path / "review_sentiment" / "config.pbtxt").read_text()
    assert "count: 2" in config and "max_queue_delay_microseconds: 100" in config
    assert installed_versions(tmp_path) == [3]
    assert not [p for p in (tmp_path / "review_sentiment").iterdir() if p.name.startswith(".")]

    with pytest.raises(FileExistsError):
        install_model(tiny_sentiment_artifact, tmp_path, version=3)
    install_model(tiny_sentiment_artifact, tmp_path, version=3, overwrite=True)
    install_model(tiny_sentiment_artifact, tmp_path, version=4)
    assert installed_versions(tmp_path) == [3, 4]


def test_install_model_rejects_incomplete_artifacts(
    tiny_sentiment_artifact: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "artifact"
    shutil.copytree(tiny_sentiment_artifact, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        install_model(broken, tmp_path / "repo")
    shutil.copy2(tiny_sentiment_artifact / "tokenizer.json", broken / "tokenizer.json")
    (broken / "meta.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ValueError, match="lacks"):
        install_model(broken, tmp_path / "repo")
    assert installed_versions(tmp_path / "repo") == []


@pytest.mark.parametrize("path", [Path(runtime.__file__), MODEL_SOURCE])
def test_served_code_imports_nothing_of_ours(path: Path) -> None:
    """model.py and the runtime run inside Triton's stub: no ecomstream imports allowed."""
    tree = ast.parse(path.read_text())
    allowed = {
        "__future__",
        "collections",
        "dataclasses",
        "importlib",
        "json",
        "numpy",
        "onnxruntime",
        "pathlib",
        "sys",
        "tokenizers",
        "triton_python_backend_utils",
        "typing",
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            assert module.split(".")[0] in allowed, f"{path.name} imports {module}"


def test_repository_module_paths_point_at_the_checkout() -> None:
    assert MODEL_SOURCE.is_file()
    assert repository.COMMITTED_REPO.name == "triton_repo"


def test_scoring_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOMSTREAM_SCORER", "onnx")
    monkeypatch.setenv("ECOMSTREAM_TRITON_GRPC_URL", "10.0.0.5:9001")
    monkeypatch.setenv("ECOMSTREAM_SCORE_BATCH_SIZE", "16")
    monkeypatch.setenv("ECOMSTREAM_CIRCUIT_RESET_S", "0.5")
    settings = ScoringSettings()
    assert settings.scorer == "onnx"
    assert settings.triton_grpc_url == "10.0.0.5:9001"
    assert settings.score_batch_size == 16
    assert settings.circuit_reset_s == 0.5
    assert settings.model_name == "review_sentiment"
    monkeypatch.setenv("ECOMSTREAM_SCORER", "pytorch")
    with pytest.raises(ValueError):
        ScoringSettings()
