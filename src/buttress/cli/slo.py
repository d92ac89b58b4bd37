"""``buttress slo rules|report|check|import``: SLOs for Prometheus, SLA reports, budget checks, imports.

SLOs come from ``[[slo]]`` in the configuration (``--config``, default: the ``buttress.toml`` that applies
here) and from any ``--spec`` OpenSLO or Sloth YAML files. History is read from ``--store`` (default
``.buttress/slo.db``). Exit codes: 0 ok; 1 a check failed (bad SLO spec, an SLO breached or alerting);
2 could not run (unreadable or corrupt history, no data, bad arguments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from buttress import config as _config
from buttress.cli._console import console, err_console
from buttress.errors import ConfigError, MeasureError, StoreError
from buttress.slo.spec import SLOSpec, from_config, load_file, to_toml

if TYPE_CHECKING:
    from rich.table import Table

    from buttress.slo.engine import SLOStatus
    from buttress.slo.store import HistoryStore

__all__ = ["command"]

_config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="buttress.toml to read [[slo]] from (default: the one that applies here).",
)
_spec_option = click.option(
    "--spec",
    "spec_files",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="OpenSLO v1 or Sloth prometheus/v1 YAML file with more SLOs (repeatable).",
)
_store_option = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".buttress") / "slo.db",
    show_default=True,
    help="The SLO history database.",
)


@click.group("slo")
def command() -> None:
    """Service level objectives: Prometheus rules, SLA reports, budget checks and spec imports."""


def _fail_config(exc: ConfigError) -> NoReturn:
    where = f" in {exc.source}" if exc.source else ""
    err_console.print(f"[red]{len(exc.problems)} problem(s)[/]{where}:", highlight=False)
    for problem in exc.problems:
        err_console.print(f"  {problem}", highlight=False, markup=False)
    raise SystemExit(1)


def _specs(config_file: Path | None, spec_files: tuple[Path, ...]) -> list[SLOSpec]:
    try:
        cfg = _config.load(config_file)
        specs = from_config(cfg.section("slo"), cfg.source)
        for path in spec_files:
            specs.extend(load_file(path))
    except ConfigError as exc:
        _fail_config(exc)
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        err_console.print(
            f"[red]error:[/] SLO names must be unique; repeated: {', '.join(dupes)}", highlight=False
        )
        raise SystemExit(1)
    if not specs:
        err_console.print(
            "[red]error:[/] no SLOs: add [[slo]] tables to buttress.toml or pass --spec FILE.",
            highlight=False,
        )
        raise SystemExit(2)
    return specs


def _open_store(path: Path) -> HistoryStore:
    from buttress.slo.store import HistoryStore

    if not path.is_file():
        err_console.print(f"[red]error:[/] no SLO history at {path}; record traffic first or pass --store.")
        raise SystemExit(2)
    try:
        return HistoryStore(path)
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
        raise SystemExit(2) from None


def _write(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}")


@command.command("rules")
@_config_option
@_spec_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Rules file (default: stdout).")
@click.option(
    "--dashboard",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a Grafana dashboard JSON.",
)
def rules(
    config_file: Path | None, spec_files: tuple[Path, ...], out: Path | None, dashboard: Path | None
) -> None:
    """Write Sloth-compatible Prometheus recording and alerting rules (and a Grafana dashboard).

    Latency SLOs read the histogram bucket at their threshold: export with
    register(bounds=histogram_bounds(specs)) so those buckets exist.
    """
    from buttress.slo.rules import (
        EXPORTED_METRICS,
        check_expressions,
        grafana_dashboard,
        prometheus_rules,
        rules_yaml,
    )

    specs = _specs(config_file, spec_files)
    groups = prometheus_rules(specs)["groups"]
    rule_list = [r for g in groups for r in g["rules"]]
    known = set(EXPORTED_METRICS) | {r["record"] for r in rule_list if "record" in r}
    problems = check_expressions([r["expr"] for r in rule_list], known)
    if problems:  # a bug in the generator, never the user's input; refuse to write broken rules
        for p in problems:
            err_console.print(f"  {p}", markup=False)
        raise SystemExit(2)
    _write(rules_yaml(specs), out)
    if dashboard is not None:
        _write(json.dumps(grafana_dashboard(specs), indent=2) + "\n", dashboard)


@command.command("report")
@click.option("--period", required=True, help="Calendar month, YYYY-MM (e.g. 2026-11).")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default: stdout).")
@_store_option
@_config_option
@_spec_option
def report(
    period: str,
    fmt: str,
    out: Path | None,
    store_path: Path,
    config_file: Path | None,
    spec_files: tuple[Path, ...],
) -> None:
    """Write the SLA report for a month: availability, endpoints, budgets, incidents, verdicts."""
    from buttress.slo.report import build_report, parse_period, report_json

    try:
        parse_period(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    specs = _specs(config_file, spec_files)
    store = _open_store(store_path)
    try:
        result = build_report(store, specs, period)
    except (MeasureError, StoreError) as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
        raise SystemExit(2) from None
    if fmt == "html":
        text = result.to_html()
    elif fmt == "md":
        text = result.to_markdown()
    else:
        text = report_json(result) + "\n"
    _write(text, out)


@command.command("check")
@_store_option
@_config_option
@_spec_option
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as JSON.")
def check(store_path: Path, config_file: Path | None, spec_files: tuple[Path, ...], as_json: bool) -> None:
    """Evaluate every SLO on the recorded history now; exit 1 if one is breached or alerting."""
    specs = _specs(config_file, spec_files)
    statuses = _evaluate_history(specs, _open_store(store_path))
    if as_json:
        click.echo(json.dumps([s.to_json() for s in statuses], indent=2))
    else:
        console.print(_status_table(statuses))
    if any(s.breached or s.firing for s in statuses):
        raise SystemExit(1)


def _evaluate_history(specs: list[SLOSpec], store: HistoryStore) -> list[SLOStatus]:
    """The SLOs' statuses now, from a throwaway engine warmed from the history (nothing is written back)."""
    from buttress.slo.monitor import SLOMonitor
    from buttress.slo.recorder import HttpRecorder
    from buttress.telemetry.events import EventStream
    from buttress.telemetry.registry import Registry

    try:
        monitor = SLOMonitor(
            specs, HttpRecorder(Registry()), store=None, events=EventStream(), registry=Registry()
        )
        span = store.span()
        now = monitor.clock.time()
        for minute, samples in store.minutes(now - max(s.window_seconds for s in specs) - 60, now):
            monitor.engine.ingest(minute, samples)
        statuses = monitor.engine.evaluate()
    except StoreError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
        raise SystemExit(2) from None
    if span is None:
        err_console.print("[red]error:[/] the SLO history is empty.")
        raise SystemExit(2)
    return statuses


def _status_table(statuses: list[SLOStatus]) -> Table:
    from rich.table import Table

    table = Table(title="SLOs")
    for col in ("SLO", "objective", "SLI", "budget left", "burn 1h", "burn 6h", "alerts", "status"):
        table.add_column(col)
    for s in statuses:
        table.add_row(
            s.name,
            f"{s.objective:.3%}",
            f"{s.sli_value:.3%}",
            f"{s.budget_remaining:.1%}",
            f"{s.burn_rates['1h']:.2f}",
            f"{s.burn_rates['6h']:.2f}",
            ", ".join(s.firing) or "-",
            _status_text(s),
        )
    return table


def _status_text(s: SLOStatus) -> str:
    if s.breached:
        return "[red]breached[/]"
    return "[yellow]alerting[/]" if s.firing else "[green]ok[/]"


@command.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["openslo", "sloth"]), help="Input format (default: detect)."
)
def import_(file: Path, fmt: str | None) -> None:
    """Print [[slo]] tables for buttress.toml from an OpenSLO v1 or Sloth prometheus/v1 YAML FILE."""
    try:
        specs = load_file(file, fmt)
    except ConfigError as exc:
        _fail_config(exc)
    click.echo(to_toml(specs), nl=False)
