"""Entry point of the ``buttress`` command.

Exit codes, for every command:

==== =====================================================================
0    success (a check passed, a report was written)
1    a gate or check failed (bad configuration, quality gate failed, SLO breached)
2    could not run: bad arguments, a measure that could not be taken, unreadable input
==== =====================================================================

Command groups live one per module in :mod:`buttress.cli`; :data:`GROUPS` maps each group name to its
module, imported only when that group runs, so ``buttress --help`` stays fast and a group whose optional
extra is missing fails with the install hint only when used.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["GROUPS", "cli", "main"]

#: Command group name -> (module, one-line help). Each module exposes ``command`` (a click command/group).
GROUPS: dict[str, tuple[str, str]] = {
    "version": ("buttress.cli.version", "Print the buttress version."),
    "config": ("buttress.cli.config", "Check and summarise buttress.toml."),
    "cache": ("buttress.cli.cache", "Operate the caches of buttress.toml: stats, get, invalidate, warm."),
    "dlq": ("buttress.cli.dlq", "Inspect, replay and purge dead letters (SQLite or Redis store)."),
    "demo": ("buttress.cli.demo", "Run the reference event platform: providers, traffic, dashboard."),
    "slo": ("buttress.cli.slo", "SLOs: Prometheus rules, SLA reports, budget checks, spec imports."),
    "quality": ("buttress.cli.quality", "Quality gate: complexity, duplication, coverage, security; trends."),
}


class _LazyGroup(click.Group):
    """A click group that imports each sub-command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = GROUPS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = module.command
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from GROUPS so listing commands imports nothing.
        rows = [(name, GROUPS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="buttress", prog_name="buttress")
def cli() -> None:
    """buttress: resilience, caching, SLOs and quality gates for a service platform.

    Exit codes: 0 success, 1 a check or gate failed, 2 could not run (bad arguments or input).
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the command line; returns the exit code when ``standalone_mode`` is off (tests)."""
    try:
        return cli.main(args=argv, prog_name="buttress", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
