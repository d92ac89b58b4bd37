"""``buttress quality``: the quality gate (``check``) and its history (``trends``).

Exit codes of ``check``: 0 the gate passed, 1 it failed, 2 something could not be measured (or the
arguments or configuration are bad).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from buttress.cli._console import console, err_console, progress

__all__ = ["command"]

_FORMATS = ("terminal", "json", "sarif", "junit", "html")


@click.group("quality")
def command() -> None:
    """Quality gates: complexity, duplication, coverage, security; history and trends."""


@command.command("check")
@click.argument("path", required=False, default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--base", metavar="REF", help="judge new code: the lines changed since this git ref")
@click.option(
    "--profile", "profile_name", metavar="NAME", help="profile to gate with (default: quality.profile)"
)
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="terminal", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="write the report here")
@click.option("--run-tests", is_flag=True, help="run the profile's test command under coverage first")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-record", is_flag=True, help="do not store this run in the quality history")
def check_command(
    path: Path,
    base: str | None,
    profile_name: str | None,
    fmt: str,
    output: Path | None,
    run_tests: bool,
    config_file: Path | None,
    no_record: bool,
) -> None:
    """Measure PATH (default: the current folder) and judge it with a profile.

    Exit code 0: passed; 1: a condition failed; 2: a figure could not be measured, or bad input.
    """
    from buttress.errors import ConfigError, StoreError
    from buttress.quality.check import check
    from buttress.quality.report import FORMATS

    try:
        # Transient: the bar goes once the report is printed (it is on stderr, so --format json stays clean).
        with progress(transient=True) as bar:
            task = bar.add_task("measuring", total=None)

            def step(name: str, done: int, total: int) -> None:
                bar.update(task, description=name, completed=done, total=total)

            result = check(
                path,
                profile=profile_name,
                base=base,
                run_tests=run_tests,
                config_file=config_file,
                record=not no_record,
                on_progress=step,
            )
    except ConfigError as exc:
        err_console.print(str(exc), markup=False, highlight=False)
        sys.exit(2)
    except StoreError as exc:
        err_console.print(str(exc), markup=False, highlight=False)
        sys.exit(2)
    if fmt == "terminal":
        from buttress.quality.report.terminal import print_result

        if output is not None:
            from rich.console import Console

            with output.open("w", encoding="utf-8") as fh:
                print_result(result, Console(file=fh, width=140, no_color=True))
        else:
            print_result(result, console)
    else:
        text = importlib.import_module(FORMATS[fmt]).render(result)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            err_console.print(f"{fmt} report written to {output} · gate {result.status}")
        else:
            click.echo(text, nl=False)
    sys.exit(result.exit_code)


@command.command("trends")
@click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), help="history file (default: quality.history)"
)
@click.option("--last", default=30, show_default=True, help="how many runs and sessions to look at")
@click.option("--target", help="only gate runs of this target (as recorded, e.g. 'src')")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="also draw charts into this PNG")
@click.option(
    "--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="write an HTML page"
)
@click.option("--top", default=10, show_default=True, help="rows per table")
def trends_command(
    db: Path | None, last: int, target: str | None, png: Path | None, html_out: Path | None, top: int
) -> None:
    """Metric trends, slowest and slower tests, flaky tests, and the suite's time, from the history."""
    from buttress.errors import ConfigError, StoreError
    from buttress.quality.check import load_section
    from buttress.quality.gitdiff import project_root
    from buttress.quality.history import History
    from buttress.quality.trends import compute_trends, print_trends, render_html, render_png

    try:
        if db is None:
            root = project_root(Path.cwd())
            db = root / load_section(root)["history"]
        trends = compute_trends(History(db), last=last, target=target, top=top)
    except (ConfigError, StoreError) as exc:
        err_console.print(str(exc), markup=False, highlight=False)
        sys.exit(2)
    print_trends(trends, console)
    if png is not None:
        try:
            render_png(trends, png)
        except ImportError as exc:
            err_console.print(str(exc), markup=False, highlight=False)
            sys.exit(2)
        err_console.print(f"charts written to {png}")
    if html_out is not None:
        html_out.write_text(render_html(trends), encoding="utf-8")
        err_console.print(f"HTML written to {html_out}")
