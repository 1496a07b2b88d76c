"""Placeholder: filled by the capability that owns `ecomstream model`."""

import click


@click.group(name="model")
def model() -> None:
    """Not yet available."""
