"""``buttress dlq list|show|replay|purge``: look at dead letters, run them again, or drop them.

The store is ``--store sqlite:PATH`` or ``--store redis://host:port/db``; by default the ``dead_letter`` of
the ``--policy`` entry in buttress.toml, else ``[resilience] dead_letter`` (``sqlite:.buttress/dlq.db``).
Ages are durations: ``--older-than 1h``.

Replaying needs the function that does the work: ``--handler package.module:function``. It runs under
the policy's pipeline from buttress.toml when ``--policy`` names one (``--no-pipeline`` to run it bare),
so an open circuit stops the replay instead of burning items.

Exit codes: 0 done; 1 a replay left failed items or stopped early; 2 could not run (bad store, bad
handler, corrupt store, bad arguments).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.table import Table

from buttress import config as _config
from buttress._extras import import_object
from buttress.cli._console import console, err_console, progress
from buttress.errors import ConfigError, StoreError

__all__ = ["command"]


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/] {message}", highlight=False)
    raise SystemExit(2)


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return _config.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (got {value!r})") from None


def _store_address(store: str | None, policy: str | None) -> str:
    if store:
        return store
    try:
        section = _config.current().section("resilience")
    except ConfigError as exc:
        _fail(f"buttress.toml is invalid, so the default store is unknown; pass --store.\n{exc}")
    entry = section["policies"].get(policy) if policy else None
    if entry and entry.get("dead_letter"):
        return str(entry["dead_letter"])
    return str(section["dead_letter"])


def _open(store: str | None, policy: str | None) -> Any:
    from buttress.resilience.dlq import open_store

    address = _store_address(store, policy)
    try:
        return open_store(address)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    except ImportError as exc:
        _fail(str(exc))


def _age(created: float) -> str:
    seconds = max(0.0, time.time() - created)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.UTC).isoformat(timespec="seconds")


store_option = click.option(
    "--store", metavar="ADDRESS", help="sqlite:PATH or redis://host:port/db (default: from buttress.toml)."
)
older_option = click.option(
    "--older-than",
    "older_than",
    metavar="DURATION",
    callback=_duration,
    help="Only items at least this old (1h).",
)


@click.group("dlq")
def command() -> None:
    """Inspect, replay and purge dead letters (SQLite or Redis store)."""


@command.command("list")
@store_option
@click.option("--policy", help="Only this policy's items.")
@older_option
@click.option("--limit", type=click.IntRange(min=1), help="At most this many items.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(
    store: str | None, policy: str | None, older_than: float | None, limit: int | None, as_json: bool
) -> None:
    """List dead letters, oldest first."""
    with _open(store, policy) as opened:
        try:
            items = opened.list(policy=policy, older_than=older_than, limit=limit)
            total = opened.count(policy)
        except StoreError as exc:
            _fail(str(exc))
        if as_json:
            click.echo(json.dumps([item.to_json() for item in items], indent=2))
            return
        table = Table(title=f"{len(items)} of {total} dead letter(s) in {opened.url}")
        for column in ("id", "policy", "age", "attempts", "replays", "error"):
            table.add_column(column, overflow="fold")
        for item in items:
            error = f"{item.error_type}: {item.error_message}" if item.error_type else ""
            table.add_row(
                item.id, item.policy, _age(item.created), str(item.attempts), str(item.replays), error[:80]
            )
        console.print(table)


@command.command("show")
@click.argument("letter_id", metavar="ID")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(letter_id: str, store: str | None, as_json: bool) -> None:
    """Show one dead letter in full."""
    with _open(store, None) as opened:
        try:
            item = opened.get(letter_id)
        except StoreError as exc:
            _fail(str(exc))
        if item is None:
            _fail(f"no dead letter {letter_id!r} in {opened.url}")
        data = item.to_json()
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        for key in ("first_failure", "last_failure", "created"):
            data[key] = f"{_when(data[key])} ({_age(data[key])} ago)"
        width = max(map(len, data))
        for key, value in data.items():
            shown = json.dumps(value) if key == "payload" else value
            console.print(f"[bold]{key.ljust(width)}[/]  {shown}", highlight=False)


def _load_handler(spec: str) -> Callable[..., Any]:
    if os.getcwd() not in sys.path:  # like `python -m`: modules of the project being worked on import
        sys.path.insert(0, os.getcwd())
    try:
        target = import_object(spec, "--handler")
    except LookupError as exc:
        _fail(str(exc))
    if not callable(target):
        _fail(f"--handler {spec!r} is not a function")
    # A function decorated with buttress policies would run them twice under the replay's pipeline.
    while hasattr(target, "__buttress_policy__") and hasattr(target, "__wrapped__"):
        target = target.__wrapped__
    return target  # type: ignore[no-any-return]


@command.command("replay")
@store_option
@click.option("--policy", required=True, help="Replay this policy's items (and run them under its pipeline).")
@click.option(
    "--handler",
    "handler_spec",
    required=True,
    metavar="MODULE:FUNCTION",
    help="The function that does the work.",
)
@older_option
@click.option("--limit", type=click.IntRange(min=1), help="At most this many items.")
@click.option("--no-pipeline", is_flag=True, help="Run the handler bare, not under the policy's pipeline.")
@click.option(
    "--lease", default="5m", callback=_duration, metavar="DURATION", help="How long an item stays leased."
)
def replay(
    store: str | None,
    policy: str,
    handler_spec: str,
    older_than: float | None,
    limit: int | None,
    no_pipeline: bool,
    lease: float,
) -> None:
    """Run dead letters through their handler again; each one that succeeds is deleted."""
    from buttress.resilience._util import is_async_callable
    from buttress.resilience.dlq import DeadLetterQueue
    from buttress.resilience.registry import names
    from buttress.resilience.registry import policy as named_policy

    handler = _load_handler(handler_spec)
    pipeline = None
    if not no_pipeline:
        try:
            if policy in names():
                pipeline = named_policy(policy)
        except ConfigError as exc:
            _fail(f"buttress.toml is invalid; fix it or pass --no-pipeline.\n{exc}")
    with _open(store, policy) as opened:
        queue = DeadLetterQueue(opened, policy=policy)
        try:
            total = min(len(opened.list(policy=policy, older_than=older_than)), limit or 10**12)
        except StoreError as exc:
            _fail(str(exc))
        where = f"under policy {policy!r}'s pipeline" if pipeline is not None else "without a pipeline"
        err_console.print(f"Replaying {total} item(s) from {opened.url} {where}.", highlight=False)
        with progress() as bar:
            task = bar.add_task(f"replay {policy}", total=total)

            def step(done: int, _total: int, _item: Any) -> None:
                bar.update(task, completed=done)

            try:
                if is_async_callable(handler):
                    report = asyncio.run(
                        queue.areplay(
                            handler,
                            pipeline,
                            older_than=older_than,
                            limit=limit,
                            lease=lease,
                            on_progress=step,
                        )
                    )
                else:
                    report = queue.replay(
                        handler, pipeline, older_than=older_than, limit=limit, lease=lease, on_progress=step
                    )
            except StoreError as exc:
                _fail(str(exc))
    console.print(
        f"replayed {report.replayed}, failed {report.failed}, remaining {report.remaining}", highlight=False
    )
    if report.stopped:
        console.print(f"[yellow]stopped:[/] {report.stopped}", highlight=False)
    if report.failed or report.stopped:
        raise SystemExit(1)


@command.command("purge")
@store_option
@click.option("--policy", help="Only this policy's items.")
@older_option
@click.option("--id", "ids", multiple=True, metavar="ID", help="Only these items (repeatable).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(
    store: str | None, policy: str | None, older_than: float | None, ids: tuple[str, ...], yes: bool
) -> None:
    """Delete dead letters for good."""
    with _open(store, policy) as opened:
        try:
            matching = opened.list(policy=policy, older_than=older_than)
        except StoreError as exc:
            _fail(str(exc))
        if ids:
            wanted = set(ids)
            matching = [item for item in matching if item.id in wanted]
        if not matching:
            console.print("Nothing to purge.")
            return
        if not yes:
            click.confirm(f"Delete {len(matching)} dead letter(s) from {opened.url} for good?", abort=True)
        try:
            removed = opened.purge(ids=[item.id for item in matching])
        except StoreError as exc:
            _fail(str(exc))
    console.print(f"purged {removed} dead letter(s)")
