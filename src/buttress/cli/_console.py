"""The shared rich console and progress bar style for every command group."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["console", "err_console", "progress"]

console = Console()
err_console = Console(stderr=True)


def progress(transient: bool = False) -> Progress:
    """A progress bar for long work (replays, warmers, load tests); drawn on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
    )
