"""The gate in a terminal: a rich table of conditions, failing ones first, then what breaks them."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from buttress.quality.gate import GateResult

__all__ = ["print_result"]

_STYLE = {
    "failed": ("✗ failed", "bold red"),
    "unmeasured": ("? unmeasured", "bold magenta"),
    "warned": ("! warning", "yellow"),
    "passed": ("✓ passed", "green"),
    "skipped": ("- skipped", "dim"),
}


def print_result(result: GateResult, console: Console, *, offenders: int = 10) -> None:
    """Print the conditions table, up to ``offenders`` offenders per broken condition, and problems."""
    head = f"quality gate · profile [bold]{result.profile}[/] · {result.files} files"
    if result.base:
        head += (
            f" · new code since {result.base} ({(result.base_commit or '')[:10]}, {result.new_lines} lines)"
        )
    console.print(head)
    console.print(_conditions(result))
    _print_offenders(result, console, offenders)
    _print_problems(result, console)
    verdict = {
        "passed": "[bold green]PASSED[/]",
        "failed": "[bold red]FAILED[/]",
        "unmeasured": "[bold magenta]COULD NOT MEASURE[/]",
    }[result.status]
    console.print(f"{verdict} (exit code {result.exit_code})")


def _conditions(result: GateResult) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("status", "condition", "value", "detail"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for r in result.ordered():
        label, style = _STYLE[r.status]
        value = "" if r.value is None else f"{r.value:.4g}"
        table.add_row(Text(label, style=style), r.condition.text, value, r.message)
    return table


def _print_offenders(result: GateResult, console: Console, limit: int) -> None:
    for r in result.ordered():
        if r.status not in ("failed", "warned") or not r.offenders:
            continue
        console.print(f"[bold]{r.condition.text}[/] — {len(r.offenders)} item(s):")
        for f in r.offenders[:limit]:
            console.print(f"  {f.path}:{f.line}  {f.message}", highlight=False, markup=False)
        if len(r.offenders) > limit:
            console.print(f"  … and {len(r.offenders) - limit} more (see --format json or html)")


def _print_problems(result: GateResult, console: Console) -> None:
    for name, m in result.measurements.items():
        for reason in m.unmeasured:
            console.print(f"[magenta]{name} could not be measured:[/] ", end="")
            console.print(reason, markup=False, highlight=False)
    if result.problems:
        console.print(f"[yellow]{len(result.problems)} file(s) left out:[/]")
        for p in result.problems[:20]:
            console.print(f"  {p.path}:{p.line}  {p.message}", markup=False, highlight=False)
