"""``ecomstream triton``: install a model, start/stop/inspect a local Triton server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click

DEFAULT_REPO = Path("serving/triton_repo")
DEFAULT_DATA_DIR = Path("var/triton")


@click.group(name="triton")
def triton() -> None:
    """A real Triton Inference Server (from the nvidia-pytriton wheel), run by PID."""


@triton.command()
@click.option("--repo", type=click.Path(path_type=Path), default=DEFAULT_REPO, show_default=True)
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True)
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to ready.")
def up(
    repo: Path, http_port: int, grpc_port: int, metrics_port: int, data_dir: Path, timeout: float
) -> None:
    """Start Triton in the background, wait until its models are ready, print the gRPC address."""
    from ecomstream.launchers.triton import TritonError, TritonServer

    server = TritonServer(
        repo, data_dir, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port
    )
    click.echo(
        f"starting Triton on {repo} (models: {', '.join(server.models) or 'none'})", err=True
    )
    try:
        address = server.start(timeout=timeout)
    except TritonError as exc:
        raise click.ClickException(str(exc)) from exc
    if server.last_start_seconds is not None:
        click.echo(f"ready in {server.last_start_seconds:.1f}s (pid {server.pid()})", err=True)
    click.echo(
        f"http {server.http_url}  metrics {server.metrics_url}  log {server.log_path}", err=True
    )
    click.echo(address)


@triton.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="SIGKILL after.")
def down(data_dir: Path, timeout: float) -> None:
    """Stop the Triton started with this data dir (by its PID)."""
    from ecomstream.launchers.triton import TritonError, TritonServer

    try:
        server = TritonServer.from_data_dir(data_dir)
    except TritonError:
        click.echo(f"no Triton state in {data_dir}; nothing to stop", err=True)
        return
    if server.stop(timeout=timeout):
        click.echo(f"stopped Triton ({data_dir})")
    else:
        click.echo(f"Triton was not running ({data_dir})")


@triton.command()
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True
)
def status(data_dir: Path) -> None:
    """Show whether Triton runs and its models are ready (exit 1 if not ready)."""
    from ecomstream.launchers.triton import TritonError, TritonServer

    try:
        server = TritonServer.from_data_dir(data_dir)
    except TritonError:
        click.echo(f"not running (no state in {data_dir})")
        sys.exit(1)
    pid = server.pid()
    if pid is None:
        click.echo(f"not running ({data_dir})")
        sys.exit(1)
    ready = server.is_ready()
    click.echo(f"pid {pid}  {'ready' if ready else 'NOT READY'}")
    click.echo(f"grpc {server.grpc_url}  http {server.http_url}  metrics {server.metrics_url}")
    click.echo(f"repository {server.model_repository}")
    for model in server.models:
        click.echo(f"  {model}: {'ready' if server.model_ready(model) else 'not ready'}")
    if not ready:
        sys.exit(1)


@triton.command()
@click.argument("artifact_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", type=click.Path(path_type=Path), default=DEFAULT_REPO, show_default=True)
@click.option("--name", "model_name", default="review_sentiment", show_default=True)
@click.option("--version", type=int, default=None, help="Triton version (default: latest + 1).")
@click.option(
    "--instance-kind",
    type=click.Choice(["KIND_CPU", "KIND_GPU"]),
    default="KIND_CPU",
    show_default=True,
)
@click.option("--instance-count", type=int, default=1, show_default=True)
@click.option("--max-batch-size", type=int, default=64, show_default=True)
@click.option("--max-queue-delay-us", type=int, default=2000, show_default=True)
@click.option("--intra-op-threads", type=int, default=1, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing version directory.")
def install(
    artifact_dir: Path,
    repo: Path,
    model_name: str,
    version: int | None,
    instance_kind: str,
    instance_count: int,
    max_batch_size: int,
    max_queue_delay_us: int,
    intra_op_threads: int,
    overwrite: bool,
) -> None:
    """Install an exported artifact (model.onnx, tokenizer.json, meta.json) into the repository."""
    from ecomstream.inference.repository import InstanceKind, install_model, installed_versions

    if version is None:
        version = max(installed_versions(repo, model_name), default=0) + 1
    try:
        target = install_model(
            artifact_dir,
            repo,
            model_name,
            version=version,
            instance_kind=cast(InstanceKind, instance_kind),
            instance_count=instance_count,
            max_batch_size=max_batch_size,
            max_queue_delay_us=max_queue_delay_us,
            intra_op_threads=intra_op_threads,
            overwrite=overwrite,
        )
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(target))
