"""Placeholder: filled by the capability that owns `ecomstream worker`."""

import click


@click.group(name="worker")
def worker() -> None:
    """Not yet available."""
