"""Placeholder: filled by the capability that owns `ecomstream kafka`."""

import click


@click.group(name="kafka")
def kafka() -> None:
    """Not yet available."""
