"""``ecomstream evaluate``: offline evaluations over a simulator run and its ground truth."""

from __future__ import annotations

import click

from ecomstream.recommend.evaluate import evaluate_recommendations


@click.group()
def evaluate() -> None:
    """Evaluate alerts and recommendations against the simulator's ground truth."""


@evaluate.command(
    name="alerts",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def alerts(args: tuple[str, ...]) -> None:
    """Precision, recall, delay and false alarms of the sentiment detector (see --help)."""
    from ecomstream.alerts.evaluate import main

    main(list(args))


evaluate.add_command(evaluate_recommendations, name="recommendations")
