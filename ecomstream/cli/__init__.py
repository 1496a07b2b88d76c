"""The ``ecomstream`` command: one entry point, one sub-command per concept."""

from __future__ import annotations

import logging

import click

from ecomstream.cli.demo import demo
from ecomstream.cli.evaluate import evaluate
from ecomstream.cli.kafka import kafka
from ecomstream.cli.model import model
from ecomstream.cli.replay import replay
from ecomstream.cli.simulate import simulate
from ecomstream.cli.triton import triton
from ecomstream.cli.worker import worker
from ecomstream.launchers.process import exit_on_sigterm


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Real-time e-commerce behaviour analytics."""
    exit_on_sigterm()  # commands that start servers stop them on SIGTERM too
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for command in (kafka, simulate, worker, demo, model, triton, replay, evaluate):  # one per concept
    main.add_command(command)
