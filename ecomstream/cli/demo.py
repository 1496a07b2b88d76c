"""Placeholder: filled by the capability that owns `ecomstream demo`."""

import click


@click.group(name="demo")
def demo() -> None:
    """Not yet available."""
