"""Placeholder: filled by the capability that owns `ecomstream triton`."""

import click


@click.group(name="triton")
def triton() -> None:
    """Not yet available."""
