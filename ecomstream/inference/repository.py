"""Install an exported sentiment artifact into a Triton model repository.

Layout written (Triton only loads numbered version directories)::

    <repo>/<name>/config.pbtxt            rendered here (instance kind/count, batching)
    <repo>/<name>/<version>/model.onnx     } copied from the artifact directory
    <repo>/<name>/<version>/tokenizer.json }
    <repo>/<name>/<version>/meta.json      }
    <repo>/<name>/<version>/model.py       the committed python-backend source
    <repo>/<name>/<version>/sentiment_runtime.py   copy of ecomstream/inference/runtime.py

Version directories are build outputs (git-ignored); the committed
``serving/triton_repo/review_sentiment/`` holds only ``config.pbtxt`` (the
render with defaults) and ``model.py`` (the source, which Triton ignores at
that level).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ecomstream.inference import runtime
from ecomstream.inference.runtime import ARTIFACT_FILES, META_FILE, ModelMeta

DEFAULT_MODEL_NAME = "review_sentiment"
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_PREFERRED_BATCH_SIZES = (8, 16, 32, 64)
DEFAULT_MAX_QUEUE_DELAY_US = 2_000
RUNTIME_MODULE_FILE = "sentiment_runtime.py"
InstanceKind = Literal["KIND_CPU", "KIND_GPU"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMITTED_REPO = PROJECT_ROOT / "serving" / "triton_repo"
MODEL_SOURCE = COMMITTED_REPO / DEFAULT_MODEL_NAME / "model.py"


def render_config(
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    num_labels: int = 2,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    preferred_batch_sizes: Sequence[int] | None = None,
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    instance_kind: InstanceKind = "KIND_CPU",
    instance_count: int = 1,
    intra_op_threads: int = 1,
) -> str:
    """The ``config.pbtxt`` text. The committed one is this with the defaults (a unit test checks).

    >>> "kind: KIND_GPU" in render_config(instance_kind="KIND_GPU")
    True
    """
    if max_batch_size < 1:
        raise ValueError("max_batch_size must be >= 1")
    if instance_count < 1:
        raise ValueError("instance_count must be >= 1")
    if instance_kind not in ("KIND_CPU", "KIND_GPU"):
        raise ValueError(f"instance_kind must be KIND_CPU or KIND_GPU, got {instance_kind!r}")
    if preferred_batch_sizes is None:
        preferred = [n for n in DEFAULT_PREFERRED_BATCH_SIZES if n <= max_batch_size]
    else:
        preferred = sorted(set(preferred_batch_sizes))
        if any(n < 1 or n > max_batch_size for n in preferred):
            raise ValueError(f"preferred batch sizes must lie in 1..{max_batch_size}: {preferred}")
    preferred_line = (
        f"  preferred_batch_size: [ {', '.join(str(n) for n in preferred)} ]\n" if preferred else ""
    )
    return (
        "# Rendered by ecomstream.inference.repository.render_config; "
        "`ecomstream triton install` rewrites it.\n"
        f'name: "{model_name}"\n'
        'backend: "python"\n'
        f"max_batch_size: {max_batch_size}\n"
        "input [\n"
        '  { name: "TEXT", data_type: TYPE_STRING, dims: [ 1 ] }\n'
        "]\n"
        "output [\n"
        f'  {{ name: "PROBABILITIES", data_type: TYPE_FP32, dims: [ {num_labels} ] }},\n'
        '  { name: "LABEL", data_type: TYPE_STRING, dims: [ 1 ] },\n'
        '  { name: "MODEL_NAME", data_type: TYPE_STRING, dims: [ 1 ] },\n'
        '  { name: "MODEL_VERSION", data_type: TYPE_STRING, dims: [ 1 ] }\n'
        "]\n"
        "dynamic_batching {\n"
        f"{preferred_line}"
        f"  max_queue_delay_microseconds: {max_queue_delay_us}\n"
        "}\n"
        "instance_group [\n"
        f"  {{ kind: {instance_kind}, count: {instance_count} }}\n"
        "]\n"
        "parameters [\n"
        f'  {{ key: "intra_op_threads", value: {{ string_value: "{intra_op_threads}" }} }}\n'
        "]\n"
    )


def check_artifact(artifact_dir: Path) -> ModelMeta:
    """Raise unless ``artifact_dir`` holds model.onnx, tokenizer.json and a valid meta.json."""
    missing = [name for name in ARTIFACT_FILES if not (artifact_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"artifact {artifact_dir} lacks {missing}")
    return ModelMeta.load(artifact_dir)


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def install_model(
    artifact_dir: str | Path,
    repo_dir: str | Path,
    model_name: str = DEFAULT_MODEL_NAME,
    *,
    version: int = 1,
    instance_kind: InstanceKind = "KIND_CPU",
    instance_count: int = 1,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    preferred_batch_sizes: Sequence[int] | None = None,
    max_queue_delay_us: int = DEFAULT_MAX_QUEUE_DELAY_US,
    intra_op_threads: int = 1,
    model_source: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Copy the artifact into ``<repo>/<name>/<version>/``; render ``<repo>/<name>/config.pbtxt``.

    The version directory is assembled under a hidden temporary name and
    renamed into place, so a running Triton never sees half a version.
    Returns the version directory.
    """
    artifact = Path(artifact_dir)
    meta = check_artifact(artifact)
    if version < 1:
        raise ValueError("version must be >= 1")
    source = Path(model_source) if model_source is not None else MODEL_SOURCE
    if not source.is_file():
        raise FileNotFoundError(
            f"python-backend source {source} not found (it lives in the source checkout)"
        )
    model_dir = Path(repo_dir) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    config = render_config(
        model_name=model_name,
        num_labels=len(meta.labels),
        max_batch_size=max_batch_size,
        preferred_batch_sizes=preferred_batch_sizes,
        max_queue_delay_us=max_queue_delay_us,
        instance_kind=instance_kind,
        instance_count=instance_count,
        intra_op_threads=intra_op_threads,
    )

    staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".install-{version}-"))
    try:
        for name in ARTIFACT_FILES:
            shutil.copy2(artifact / name, staging / name)
        shutil.copy2(source, staging / "model.py")
        shutil.copy2(Path(runtime.__file__), staging / RUNTIME_MODULE_FILE)
        (staging / "INSTALLED.json").write_text(
            json.dumps(
                {
                    "artifact": str(artifact.resolve()),
                    "meta": json.loads((artifact / META_FILE).read_text(encoding="utf-8")),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        staging.chmod(0o755)
        if target.exists():
            trash = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".old-{version}-"))
            target.rename(trash / "old")
            staging.rename(target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_text_atomic(model_dir / "config.pbtxt", config)
    return target


def installed_versions(repo_dir: str | Path, model_name: str = DEFAULT_MODEL_NAME) -> list[int]:
    """Numbered version directories of a model, ascending."""
    model_dir = Path(repo_dir) / model_name
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
