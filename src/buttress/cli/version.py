"""``buttress version``."""

from __future__ import annotations

import platform
from importlib import metadata

import click

__all__ = ["command"]


@click.command("version")
def command() -> None:
    """Print the buttress version, and the Python it runs on."""
    click.echo(f"buttress {metadata.version('buttress')} (Python {platform.python_version()})")
