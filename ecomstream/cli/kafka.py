"""``ecomstream kafka``: install, start, stop and inspect the local Kafka broker.

The broker runs in the background and is owned by its data directory (the
pidfile lives there), so ``up`` and ``down`` may run from different shells.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ecomstream.launchers.kafka import KAFKA_VERSION, KafkaBroker, KafkaError, ensure_installed

DEFAULT_DATA_DIR = "var/kafka"

_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    envvar="ECOMSTREAM_KAFKA_DATA_DIR",
    show_default=True,
    show_envvar=True,
    help="Broker data directory (config, logs, pidfile, topics).",
)


@click.group(name="kafka")
def kafka() -> None:
    """A real local Apache Kafka broker (single-node KRaft), run by PID."""


@kafka.command()
def install() -> None:
    """Fetch the broker jars from Maven Central (once) and print where they are."""
    try:
        libs = ensure_installed()
    except KafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Apache Kafka {KAFKA_VERSION} jars in {libs}", err=True)
    click.echo(str(libs))


@kafka.command()
@click.option(
    "--port",
    type=int,
    default=9092,
    envvar="ECOMSTREAM_KAFKA_PORT",
    show_default=True,
    show_envvar=True,
    help="Client listener port on 127.0.0.1.",
)
@click.option(
    "--controller-port",
    type=int,
    default=9093,
    envvar="ECOMSTREAM_KAFKA_CONTROLLER_PORT",
    show_default=True,
    show_envvar=True,
    help="KRaft controller listener port on 127.0.0.1.",
)
@_data_dir_option
@click.option(
    "--fast-start/--no-fast-start",
    default=False,
    show_default=True,
    help="C1-only JVM: starts sooner, lower peak throughput (fine for tests, not benchmarks).",
)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to ready.")
def up(port: int, controller_port: int, data_dir: Path, fast_start: bool, timeout: float) -> None:
    """Start the broker in the background; the last line printed is the bootstrap address."""
    running = KafkaBroker.from_data_dir(data_dir)
    pid = running.pid()
    if pid is not None:
        click.echo(f"Kafka already running for {running.data_dir} (pid {pid})", err=True)
        click.echo(running.bootstrap_servers)
        return
    broker = KafkaBroker(
        data_dir, port=port, controller_port=controller_port, fast_start=fast_start
    )
    try:
        address = broker.start(timeout=timeout)
    except KafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Kafka {KAFKA_VERSION} up (pid {broker.pid()}, data {broker.data_dir})", err=True)
    click.echo(address)


@kafka.command()
@_data_dir_option
@click.option("--timeout", type=float, default=30.0, show_default=True, help="SIGKILL after.")
def down(data_dir: Path, timeout: float) -> None:
    """Stop the broker of this data directory (exactly its PID); fine if none runs."""
    broker = KafkaBroker.from_data_dir(data_dir)
    pid = broker.pid()
    if pid is None:
        click.echo(f"Kafka not running for {broker.data_dir}", err=True)
        return
    broker.stop(timeout=timeout)
    click.echo(f"Kafka stopped (pid {pid})", err=True)


@kafka.command()
@_data_dir_option
def status(data_dir: Path) -> None:
    """Say whether the broker runs and answers; exit 1 if it does not."""
    broker = KafkaBroker.from_data_dir(data_dir)
    pid = broker.pid()
    if pid is None:
        click.echo(f"not running (data {broker.data_dir})")
        sys.exit(1)
    try:
        meta = broker.metadata()
    except OSError as exc:
        click.echo(f"pid {pid} running but not answering at {broker.bootstrap_servers}: {exc}")
        sys.exit(1)
    click.echo(
        f"running pid {pid}, bootstrap {broker.bootstrap_servers}, "
        f"cluster {meta.cluster_id}, brokers {len(meta.brokers)}, data {broker.data_dir}"
    )
