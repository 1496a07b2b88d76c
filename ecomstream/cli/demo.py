"""``ecomstream demo``: Kafka, worker and simulator on local defaults, with a live summary."""

from __future__ import annotations

from pathlib import Path

import click

from ecomstream.demo import DemoPlan, run_demo


@click.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("var/demo"))
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--duration",
    "duration_h",
    type=float,
    default=2.0,
    show_default=True,
    help="Simulated hours of shop traffic.",
)
@click.option("--rate", type=float, default=8_000, show_default=True, help="Events/s produced.")
@click.option("--users", type=int, default=20_000, show_default=True)
def demo(workdir: Path, seed: int, duration_h: float, rate: float, users: int) -> None:
    """Run the main job end to end and print what flows through each topic."""
    try:
        run_demo(
            DemoPlan(
                workdir=workdir, seed=seed, duration_s=duration_h * 3600, rate=rate, users=users
            )
        )
    except KeyboardInterrupt:
        click.echo("interrupted: everything the demo started has been stopped")
