"""Placeholder: filled by the capability that owns `ecomstream simulate`."""

import click


@click.group(name="simulate")
def simulate() -> None:
    """Not yet available."""
