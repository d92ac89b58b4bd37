"""``buttress demo``: run the reference event platform with its providers, traffic and dashboard.

Exit codes: 0 the demo ran (and, with ``--duration``, printed its summary); 2 it could not start (bad
options, a port in use, a database that cannot be opened).
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import click

from buttress.cli._console import console, err_console

__all__ = ["command"]


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _ms(x: Any) -> str:
    return "–" if x is None else f"{x:.1f}"


def print_summary(summary: Any) -> None:
    """Print a run's summary: traffic, endpoints, cache, breakers, emails."""
    data = summary.to_json()
    traffic = data["traffic"]
    console.rule("[bold]buttress demo — summary")
    if traffic:
        console.print(
            f"{traffic['requests']} requests in {traffic['elapsed_s']:.1f} s "
            f"({traffic['throughput_rps']:.1f} req/s), {traffic['errors']} errors (5xx or transport), "
            f"{traffic['dropped']} arrivals dropped at the concurrency limit"
        )
    console.print(
        f"database: {data['db_queries']:.0f} queries ({data['db_queries_per_s']:.1f}/s)",
    )
    console.print(
        _table(
            "Endpoints (server side, whole run)",
            ["endpoint", "requests", "5xx", "P50 ms", "P95 ms", "P99 ms"],
            [
                [
                    f"{e['method']} {e['route']}",
                    str(e["requests"]),
                    f"{e['errors']:.0f}",
                    _ms(e["p50_ms"]),
                    _ms(e["p95_ms"]),
                    _ms(e["p99_ms"]),
                ]
                for e in data["endpoints"]
            ],
        )
    )
    console.print(
        _table(
            "Cache",
            ["namespace", "hits", "misses", "hit rate"],
            [
                [
                    c["namespace"],
                    f"{c['hits']:.0f}",
                    f"{c['misses']:.0f}",
                    "–" if c["hit_rate"] is None else f"{100 * c['hit_rate']:.1f} %",
                ]
                for c in data["cache"]
            ],
        )
    )
    if data["transitions"]:
        console.print(
            _table(
                "Circuit transitions",
                ["breaker", "from", "to", "at (s into the run)"],
                [
                    [t["name"], t["from"], t["to"], f"{t['time'] - (summary.started or t['time']):.1f}"]
                    for t in data["transitions"]
                ],
            )
        )
    else:
        console.print("Circuit transitions: none")
    emails = data["emails"]
    console.print(
        f"confirmation emails: {emails['sent']:.0f} sent, {emails['dead_lettered']:.0f} dead-lettered, "
        f"{emails['replayed']:.0f} replayed; dead letters waiting: {data['dead_letters']['depth']:.0f}"
    )
    for o in data["outages"]:
        console.print(
            f"outage: {o['provider']} down for {(o['healed_at'] or o['down_at']) - o['down_at']:.1f} s"
        )


@click.command("demo")
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Seconds to run, then print a summary (default: until Ctrl-C).",
)
@click.option("--redis-url", default=None, help="Two-tier cache on this Redis, shared by the workers.")
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Platform processes sharing the port."
)
@click.option(
    "--database-url",
    default=None,
    help="sqlite:///file.db or postgresql://… (default: SQLite in the state dir).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", type=int, default=8000, show_default=True, help="Port of the platform (0: a free one)."
)
@click.option("--rate", type=float, default=40.0, show_default=True, help="Traffic in requests per second.")
@click.option(
    "--closed-loop", is_flag=True, help="Send traffic flat out (measures throughput) instead of --rate."
)
@click.option("--concurrency", type=int, default=16, show_default=True, help="Requests in flight at most.")
@click.option("--no-cache", is_flag=True, help="Serve every read from the database (for comparison).")
@click.option("--no-traffic", is_flag=True, help="Start the platform without the traffic generator.")
@click.option(
    "--outage",
    "outages",
    multiple=True,
    metavar="PROVIDER:START:LENGTH",
    help="Scripted provider outage, e.g. email:20:15.",
)
@click.option(
    "--state-dir",
    default=None,
    help="Where the database, dead letters and telemetry live (default .buttress/demo).",
)
@click.option(
    "--config", "config_path", default=None, help="A buttress.toml to use instead of the demo's embedded one."
)
@click.option("--json", "json_path", default=None, help="Also write the summary as JSON to this file.")
def command(
    duration: float | None,
    redis_url: str | None,
    workers: int,
    database_url: str | None,
    host: str,
    port: int,
    rate: float,
    closed_loop: bool,
    concurrency: int,
    no_cache: bool,
    no_traffic: bool,
    outages: tuple[str, ...],
    state_dir: str | None,
    config_path: str | None,
    json_path: str | None,
) -> None:
    """Run the reference event platform on buttress, with its providers, traffic and live dashboard.

    Prints the platform's and the dashboard's URLs; with --duration, stops after that many seconds and
    prints a summary: requests, P50/P95/P99 per endpoint, cache hit rate per namespace, circuit
    transitions, dead letters sent and replayed.
    """
    try:
        from buttress.demo.runner import Demo, DemoOptions, Outage

        options = DemoOptions(
            duration=duration,
            redis_url=redis_url,
            workers=workers,
            database_url=database_url,
            host=host,
            port=port,
            rate=None if closed_loop else rate,
            concurrency=concurrency,
            cache=not no_cache,
            state_dir=state_dir,
            outages=[Outage.parse(o) for o in outages],
            traffic=not no_traffic,
            config_path=config_path,
        )
        demo = Demo(options, log=console.print)
    except (ValueError, ImportError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, demo.stop_event.set)
        return await demo.run()

    try:
        summary = asyncio.run(main())
    except (RuntimeError, OSError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] the demo could not run: {exc}")
        raise SystemExit(2) from None
    print_summary(summary)
    if json_path:
        Path(json_path).write_text(json.dumps(summary.to_json(), indent=2), encoding="utf-8")
        console.print(f"summary written to {json_path}")
