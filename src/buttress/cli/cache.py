"""``buttress cache list|stats|get|delete|invalidate-tag|clear|warm``: the caches buttress.toml declares.

Every command reads ``[cache]`` from ``--config FILE`` (default: the buttress.toml that applies here, or
``$BUTTRESS_CONFIG``) and builds the namespace the way ``buttress.cache(name)`` does, so it addresses the
same Redis keys, tag stamps and invalidation channel as the services. A service that builds a namespace
with ``schema=Type`` has that type's fingerprint in the key prefix: pass ``--schema module:Type`` too
(``buttress cache stats`` lists the fingerprints present in Redis).

Writes go through the :class:`~buttress.cache.Cache` API: in a two-tier namespace ``delete``,
``invalidate-tag``, ``clear`` and ``warm`` publish on the namespace's channel, so the L1 copies held by
running processes go as well. Entries of a memory namespace live inside the process that owns it; its
figures are on that process's ``/metrics`` and the dashboard.

Exit codes: 0 done; 1 ``get`` found nothing a read would return (no entry, a corrupt or foreign entry,
an expired one, one invalidated by a tag), a required warmer failed, or a confirmation was declined;
2 could not run (bad configuration or arguments, unknown namespace, a memory namespace where a shared
backend is needed, Redis unreachable or failing mid-command, a warmer or ``--schema`` that does not
import).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from buttress import config as _config
from buttress._extras import import_object
from buttress.cli._console import console, err_console, progress
from buttress.errors import CacheError, ConfigError

__all__ = ["command"]

#: Keys whose memory is measured with ``MEMORY USAGE`` by ``stats`` (a uniform sample of the scan).
SAMPLE_SIZE = 100
_SCAN_COUNT = 1000
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&]*")
_SERIALIZERS = {b"p": "pickle", b"j": "json", b"b": "bytes"}


def _fail(message: str) -> NoReturn:
    # Messages name TOML tables ("[cache].backend"), which rich would take for markup.
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise SystemExit(2)


def _say(message: str) -> None:
    console.print(message, highlight=False, markup=False)


def _mask(url: str) -> str:
    """``url`` with its password (in the user info or a ``password=`` parameter) replaced by ``***``."""
    from buttress.resilience.dlq.base import redact

    return _QUERY_PASSWORD.sub(r"\1***", redact(url))


def _human(seconds: float) -> str:
    """``900`` -> ``15m``, ``5400`` -> ``1h30m``, ``0.25`` -> ``250ms``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------------------
# Configuration and the namespace a command works on
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Target:
    """A declared namespace: its Cache options (as the registry builds them) and its table."""

    name: str
    options: dict[str, Any]
    table: dict[str, Any]
    section: dict[str, Any]
    where: str

    @property
    def url(self) -> str:
        return str(self.options["backend"])

    @property
    def shared(self) -> bool:
        return self.url != "memory"

    @property
    def tiered(self) -> bool:
        return self.shared and self.options["tiered"] is not False


def _load(config_file: Path | None) -> _config.Config:
    path = config_file if config_file is not None else _config.find_config()
    if path is None:
        return _config.Config({}, None)
    if not path.is_file():
        _fail(f"{path} does not exist or is not a file; pass --config with the buttress.toml to read.")
    try:
        cfg = _config.load(path)
        cfg.section("cache")
    except ConfigError as exc:
        _fail(
            f"the configuration cannot be used (`buttress config check {path}` explains each problem).\n{exc}"
        )
    return cfg


def _where(cfg: _config.Config) -> str:
    return cfg.source or "the embedded defaults (no buttress.toml found here; pass --config)"


def _target(cfg: _config.Config, name: str) -> _Target:
    from buttress.cache.registry import options_for
    from buttress.config import _suggest

    section = cfg.section("cache")
    namespaces: dict[str, Any] = section["namespaces"]
    where = _where(cfg)
    if name not in namespaces:
        if not namespaces:
            _fail(
                f"unknown cache namespace {name!r}: {where} declares no [cache.namespaces.<name>] table; "
                "pass --config with the file that declares it."
            )
        known = ", ".join(sorted(namespaces))
        _fail(
            f"unknown cache namespace {name!r}{_suggest(name, sorted(namespaces))}; "
            f"{where} declares: {known}."
        )
    return _Target(name, options_for(name, cfg), namespaces[name], section, where)


def _need_shared(target: _Target, command_name: str) -> None:
    if not target.shared:
        _fail(
            f"namespace {target.name!r} is a memory cache: its entries live inside each process that uses "
            f"it, so `buttress cache {command_name}` cannot reach them from here. Point [cache].backend (or "
            f"[cache.namespaces.{target.name}].backend) in {target.where} at Redis to share the namespace; "
            f"its in-process figures are on the owning service's /metrics and dashboard."
        )


def _import(spec: str, what: str) -> Any:
    """The object ``package.module:attr`` names (the working directory importable, as with ``python -m``)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return import_object(spec, what)
    except LookupError as exc:
        _fail(str(exc))


def _unreachable(target: _Target, exc: BaseException) -> NoReturn:
    origin = f"[cache.namespaces.{target.name}].backend" if target.table.get("backend") else "[cache].backend"
    _fail(
        f"cannot reach Redis for cache namespace {target.name!r} at {_mask(target.url)}: "
        f"{_mask(str(exc)).rstrip('.') or type(exc).__name__}.\n"
        f"Check that the server is running and reachable from this machine (host, port, firewall), that "
        f"the user name, password and database in the URL are right, and that the URL says rediss:// if "
        f"the server wants TLS. The URL is {origin} in {target.where}."
    )


def _reach(target: _Target) -> None:
    """Exit 2 unless the namespace's Redis answers ``PING`` (before building anything that would wait)."""
    from buttress.cache.backends.redis import connect

    timeout = target.options["socket_timeout"]
    try:
        client, _ = connect(target.url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ImportError as exc:
        _fail(str(exc))
    except Exception as exc:  # cluster clients connect when built; any failure there is an outage
        _unreachable(target, exc)
    try:
        client.ping()
    except Exception as exc:  # ConnectionError, AuthenticationError, MasterNotFoundError, timeouts…
        _unreachable(target, exc)
    finally:
        client.close()


@contextmanager
def _open(target: _Target, schema_spec: str | None, *, writes: bool) -> Iterator[Any]:
    """The namespace's :class:`~buttress.cache.Cache`, built like ``buttress.cache(name)`` builds it.

    Reads get a Redis-only view (no L1, no listener thread); writes get the namespace as configured, so a
    two-tier namespace publishes its invalidations to the L1 copies of running processes.
    """
    from buttress.cache import Cache
    from buttress.cache.core import CacheCore
    from buttress.telemetry import Registry

    schema = _import(schema_spec, "--schema") if schema_spec else None
    _reach(target)
    options = dict(target.options)
    if not writes:
        options["tiered"] = False
    try:
        # A registry of its own: the command's counters must not mix with a host process's (tests).
        core = CacheCore(target.name, schema=schema, registry=Registry(), **options)
    except (ConfigError, CacheError) as exc:
        _fail(str(exc))
    cache = Cache(core=core)
    try:
        yield cache
    finally:
        cache.close()


def _stopped(target: _Target, doing: str) -> NoReturn:
    _fail(
        f"Redis at {_mask(target.url)} failed during the command (connection lost or timed out {doing}), "
        "so part of it may not have happened; run it again once Redis answers."
    )


def _outage_check(cache: Any, before: float, target: _Target) -> None:
    """Exit 2 when the backend counted an outage since ``before`` (the Cache API never raises for one)."""
    if cache.core.metrics.errors.value > before:
        _stopped(target, "while writing")


def _redis_error() -> type[BaseException]:
    from buttress._extras import require

    error: type[BaseException] = require("redis.exceptions", "redis").RedisError
    return error


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="buttress.toml (or pyproject.toml) to read; default: the one found here, or $BUTTRESS_CONFIG.",
)
schema_option = click.option(
    "--schema",
    "schema_spec",
    metavar="MODULE:TYPE",
    help="The type the services pass as schema= for this namespace (its fingerprint is in the key prefix).",
)


@click.group("cache")
def command() -> None:
    """Look at and operate the caches of buttress.toml ([cache.namespaces.<name>]).

    Exit codes: 0 done; 1 `get` found nothing a read would return, a required warmer failed, or a
    confirmation was declined; 2 could not run (bad configuration or arguments, unknown namespace, a
    memory namespace where a shared backend is needed, Redis unreachable, an import that fails).
    """


# --------------------------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------------------------


def _backend_text(options: dict[str, Any]) -> str:
    url = str(options["backend"])
    if url == "memory":
        return "memory"
    return f"{_mask(url)} + L1" if options["tiered"] is not False else f"{_mask(url)} (no L1)"


def _strategy_text(options: dict[str, Any]) -> str:
    strategy = str(options["ttl_strategy"])
    ttl = float(options["ttl"])
    if strategy == "jittered":
        return f"jittered ±{options['jitter'] * 100:g}%"
    if strategy == "adaptive":
        lo = options["ttl_min"] if options["ttl_min"] is not None else ttl / 10
        hi = options["ttl_max"] if options["ttl_max"] is not None else ttl * 10
        return f"adaptive p_stale={options['p_stale']:g} [{_human(lo)}, {_human(hi)}]"
    return strategy


format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


@command.command("list")
@config_option
@format_option
def list_(config_file: Path | None, fmt: str) -> None:
    """List the namespaces of [cache.namespaces] with backend, TTL, size bound and version.

    Redis passwords are shown as ***. "+ L1" marks a two-tier namespace (memory copy in each process).

    Exit codes: 0 listed; 2 the configuration cannot be read or is invalid.
    """
    from buttress.cache.registry import options_for

    cfg = _load(config_file)
    section = cfg.section("cache")
    namespaces = section["namespaces"]
    rows = []
    for name in sorted(namespaces):
        options = options_for(name, cfg)
        rows.append(
            {
                "namespace": name,
                "backend": _backend_text(options),
                "ttl_strategy": _strategy_text(options),
                "ttl": options["ttl"],
                "max_entries": options["max_entries"],
                "version": options["version"],
                "warmers": list(namespaces[name]["warmers"]),
            }
        )
    if fmt == "json":
        click.echo(json.dumps({"source": cfg.source, "namespaces": rows}, indent=2))
        return
    if not rows:
        _say(
            f"No [cache.namespaces.<name>] in {_where(cfg)}; buttress.cache(name) gives any name the "
            f"defaults (backend {_mask(section['backend'])}, fixed TTL 5m)."
        )
        return
    table = Table(title=escape(f"{len(rows)} cache namespace(s) in {_where(cfg)}"))
    for column in ("namespace", "backend", "ttl strategy", "ttl", "max entries", "version", "warmers"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(row["namespace"]),
            escape(row["backend"]),
            escape(row["ttl_strategy"]),
            _human(row["ttl"]),
            str(row["max_entries"]),
            row["version"],
            str(len(row["warmers"])),
        )
    console.print(table)


# --------------------------------------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Group:
    """Keys of one ``version:fingerprint`` of a namespace."""

    version: str
    fingerprint: str
    entries: int = 0
    tag_stamps: int = 0
    leases: int = 0


def _spinner() -> Progress:
    # A scan's length is unknown until it ends (SCAN cursors are not positions), so a spinner and a count.
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} keys"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _scan(client: Any, pattern: str, on_key: Callable[[str], None]) -> int:
    """``SCAN MATCH pattern`` with a spinner; ``on_key`` gets each key; returns how many matched."""
    count = 0
    with _spinner() as bar:
        task = bar.add_task(f"SCAN {pattern}", total=None)
        for raw in client.scan_iter(match=pattern, count=_SCAN_COUNT):
            key = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            on_key(key)
            count += 1
            if count % _SCAN_COUNT == 0:
                bar.update(task, completed=count)
        bar.update(task, completed=count)
    return count


def _memory_usage(client: Any, keys: list[str]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
    return [int(n) for n in pipe.execute() if n is not None]


class _Tally:
    """What a scan of ``<key_prefix>:<name>:*`` found: keys per version and fingerprint, and a sample."""

    def __init__(self, head: str) -> None:
        self.head = head
        self.groups: dict[tuple[str, str], _Group] = {}
        self.sample: list[str] = []
        self.seen = 0
        self._rng = random.Random()

    def add(self, key: str) -> None:
        version, _, rest = key[len(self.head) :].partition(":")
        fp, _, tail = rest.partition(":")
        group = self.groups.get((version, fp))
        if group is None:
            group = self.groups[(version, fp)] = _Group(version, fp)
        if tail.startswith("__tag__:"):
            group.tag_stamps += 1
        elif tail.endswith(":lease"):
            group.leases += 1
        else:
            group.entries += 1
        self._keep(key)

    def _keep(self, key: str) -> None:
        # Reservoir sampling: a uniform sample of every key seen, in one pass.
        self.seen += 1
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(key)
            return
        j = self._rng.randrange(self.seen)
        if j < SAMPLE_SIZE:
            self.sample[j] = key


def _memory(sizes: list[int], total: int) -> dict[str, Any]:
    if total <= SAMPLE_SIZE:
        return {
            "bytes": sum(sizes),
            "exact": True,
            "sampled_keys": len(sizes),
            "method": "MEMORY USAGE of every key",
        }
    approx = sum(sizes) / len(sizes) * total if sizes else 0.0
    return {
        "bytes": round(approx),
        "exact": False,
        "sampled_keys": len(sizes),
        "method": f"MEMORY USAGE of {len(sizes)} sampled keys, mean x {total} keys",
    }


def _collect(cache: Any, target: _Target) -> dict[str, Any]:
    client = cache.core.remote.client
    head = f"{target.options['key_prefix']}:{target.name}:"
    tally = _Tally(head)
    try:
        total = _scan(client, head + "*", tally.add)
        sizes = _memory_usage(client, tally.sample) if tally.sample else []
    except (_redis_error(), OSError) as exc:
        _unreachable(target, exc)
    prefix = cache.core.prefix
    version, fp = prefix[len(head) :].rstrip(":").split(":", 1)
    current = tally.groups.get((version, fp), _Group(version, fp))
    return {
        "namespace": target.name,
        "backend": _mask(target.url),
        "tiered": target.tiered,
        "pattern": head + "*",
        "prefix": prefix,
        "keys": total,
        "entries": current.entries,
        "tag_stamps": current.tag_stamps,
        "leases": current.leases,
        "groups": [
            {**vars(g), "current": (g.version, g.fingerprint) == (version, fp)}
            for g in sorted(tally.groups.values(), key=lambda g: (g.version, g.fingerprint))
        ],
        "memory": _memory(sizes, total),
    }


def _memory_stats(target: _Target, fmt: str) -> None:
    where = (
        "Its entries and figures live in the process that owns the cache: read them from that service's "
        f'/metrics (buttress_cache_entries{{namespace="{target.name}"}}, buttress_cache_bytes, '
        "buttress_cache_requests_total) or the buttress dashboard."
    )
    if fmt == "json":
        click.echo(json.dumps({"namespace": target.name, "backend": "memory", "stats": None, "note": where}))
        return
    _say(f"Namespace {target.name!r} is a memory cache; this command cannot count its entries. {where}")


def _print_stats(data: dict[str, Any], target: _Target, schema_spec: str | None) -> None:
    kind = "two tiers: Redis + an L1 in each process" if data["tiered"] else "Redis only"
    _say(f"namespace {target.name} at {data['backend']} ({kind})")
    _say(f"SCAN {data['pattern']}: {data['keys']} key(s)")
    _say(
        f"under {data['prefix']} (this configuration's prefix): {data['entries']} entries, "
        f"{data['tag_stamps']} tag stamp(s) (tags invalidated at least once), {data['leases']} load lease(s)"
    )
    if data["groups"]:
        table = Table(title="keys by version and schema fingerprint")
        for column in ("version", "fingerprint", "entries", "tag stamps", "leases", ""):
            table.add_column(column)
        for g in data["groups"]:
            mark = "current" if g["current"] else ""
            table.add_row(
                escape(g["version"]),
                escape(g["fingerprint"]),
                str(g["entries"]),
                str(g["tag_stamps"]),
                str(g["leases"]),
                mark,
            )
        console.print(table)
    memory = data["memory"]
    approx = "" if memory["exact"] else "approx. "
    _say(f"memory: {approx}{_bytes(memory['bytes'])} ({memory['method']})")
    others = [g for g in data["groups"] if not g["current"] and g["version"] == target.options["version"]]
    if others and not data["entries"] and not schema_spec:
        _say(
            f"No entries under this configuration's prefix, but {sum(g['entries'] for g in others)} under "
            "another schema fingerprint: if the services build the namespace with schema=Type, pass "
            "--schema module:Type."
        )


@command.command("stats")
@click.argument("name")
@config_option
@schema_option
@format_option
def stats(name: str, config_file: Path | None, schema_spec: str | None, fmt: str) -> None:
    """Count NAME's keys in Redis (SCAN) and estimate their memory (MEMORY USAGE on a sample).

    Keys are grouped by version and schema fingerprint: keys of another version (or of a service that
    passes another schema=) are the namespace's too, but this configuration reads only the current one.
    A memory namespace's figures live in the process that owns it (/metrics, dashboard).

    Exit codes: 0 done (a memory namespace too: it is told where its figures are); 2 could not run
    (unknown namespace, Redis unreachable, a --schema that does not import).
    """
    target = _target(_load(config_file), name)
    if not target.shared:
        _memory_stats(target, fmt)
        return
    with _open(target, schema_spec, writes=False) as cache:
        data = _collect(cache, target)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    _print_stats(data, target, schema_spec)


# --------------------------------------------------------------------------------------------------------
# get
# --------------------------------------------------------------------------------------------------------


def _show_value(frame: Any) -> tuple[str, str | None]:
    """``(text, problem)``: the value as text, and why it is unreadable (``None`` when it is fine)."""
    kind = _SERIALIZERS.get(frame.serializer)
    payload = frame.payload
    if kind == "json":
        try:
            return json.dumps(json.loads(payload), indent=2, ensure_ascii=False), None
        except ValueError as exc:
            return repr(payload[:80]), f"the JSON payload does not parse ({exc})"
    if kind == "bytes":
        return repr(payload), None
    if kind == "pickle":
        try:
            return repr(pickle.loads(payload)), None  # the operator's own Redis, as trusted as the service
        except (ImportError, AttributeError) as exc:
            return f"<a pickled object this environment cannot import: {exc}>", None
        except Exception as exc:  # a broken pickle fails in many ways
            return repr(payload[:80]), f"the pickled payload does not load ({exc!r})"
    name = frame.serializer.decode("ascii", "replace")
    return f"<{len(payload)} bytes written by a custom serializer {name!r}: {payload[:80]!r}>", None


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.UTC).isoformat(timespec="seconds")


def _rows(frame: Any, data: bytes, pttl: int, stamps: list[int]) -> tuple[list[tuple[str, str]], list[str]]:
    """Lines to print for an entry, and the reasons a read would miss it."""
    misses: list[str] = []
    now = time.time()
    rows = [("expires in", "never (no Redis TTL)" if pttl < 0 else f"{_human(pttl / 1000)} (Redis TTL)")]
    if frame.fresh_until is not None:
        left = frame.fresh_until - now
        state = f"{_human(left)} left" if left > 0 else f"expired {_human(-left)} ago"
        rows.append(("fresh until", f"{_when(frame.fresh_until)} ({state})"))
        rows.append(("load took", _human(frame.delta)))
        if left <= 0:
            misses.append("its freshness ended (kept only for serve_stale: get() misses it)")
    if frame.tags:
        shown = []
        for (tag, stamp), now_stamp in zip(frame.tags, stamps, strict=True):
            if stamp == now_stamp:
                shown.append(f"{tag} (stamp {stamp}, current)")
            else:
                shown.append(f"{tag} (stamp {stamp}, now {now_stamp}: invalidated)")
                misses.append(f"tag {tag!r} was invalidated after it was written")
        rows.append(("tags", "; ".join(shown)))
    flags = [f for f, on in (("freshness", frame.fresh_until is not None), ("tags", bool(frame.tags))) if on]
    serializer = _SERIALIZERS.get(frame.serializer, repr(frame.serializer.decode("ascii", "replace")))
    rows.append(
        (
            "frame",
            f"format {frame.format}, serializer {serializer}, {'+'.join(flags) or 'bare value'}, "
            f"payload {len(frame.payload)} B of {len(data)} B stored",
        )
    )
    return rows, misses


def _read_raw(client: Any, rkey: str, target: _Target) -> tuple[str, bytes | None, int]:
    """``(Redis type, bytes if a string, PTTL in ms)`` of ``rkey``, read past the cache's decoding."""
    try:
        raw_kind = client.type(rkey)
        kind = raw_kind.decode() if isinstance(raw_kind, bytes) else str(raw_kind)
        data = client.get(rkey) if kind == "string" else None
        return kind, data, int(client.pttl(rkey))
    except (_redis_error(), OSError) as exc:
        _unreachable(target, exc)


@command.command("get")
@click.argument("name")
@click.argument("key")
@config_option
@schema_option
def get(name: str, key: str, config_file: Path | None, schema_spec: str | None) -> None:
    """Show KEY's entry in NAME: value (repr, or JSON for the json serializer), TTL, tags, frame.

    Exit 0 when a read would return the value; 1 when it would not: no entry, a corrupt or foreign
    entry, an expired one, or one whose tag was invalidated (what is there is still shown);
    2 could not run (unknown namespace, memory namespace, Redis unreachable or failing mid-command).
    """
    from buttress.cache.serialize import CorruptEntry, read_frame

    target = _target(_load(config_file), name)
    _need_shared(target, "get")
    with _open(target, schema_spec, writes=False) as cache:
        remote = cache.core.remote
        rkey = remote.key(key)
        kind, data, pttl = _read_raw(remote.client, rkey, target)
        if kind == "none":
            hint = "" if schema_spec else " (a service that passes schema= to this namespace needs --schema)"
            err_console.print(
                escape(f"no entry {key!r} in namespace {name!r}: Redis key {rkey}{hint}"), highlight=False
            )
            raise SystemExit(1)
        head = [("namespace", name), ("key", key), ("redis key", rkey)]
        if data is None:
            _print_rows([*head, ("entry", f"a Redis {kind}, not a buttress entry (foreign data)")])
            raise SystemExit(1)
        try:
            frame = read_frame(data)
        except CorruptEntry as exc:
            _print_rows([*head, ("entry", f"corrupt or foreign: {exc}; {len(data)} B, starts {data[:24]!r}")])
            raise SystemExit(1) from None
        stamps = remote.tag_stamps([t for t, _ in frame.tags]) if frame.tags else []
        if stamps is None:
            _stopped(target, "while reading the entry's tag stamps")
    rows, misses = _rows(frame, data, pttl, stamps)
    text, problem = _show_value(frame)
    if problem:
        misses.append(f"the entry is corrupt: {problem}")
    status = "fresh: a read returns this value" if not misses else "a read misses: " + "; ".join(misses)
    _print_rows([*head, ("status", status), *rows])
    console.print("[bold]value[/]", highlight=False)
    _say(text)
    if misses:
        raise SystemExit(1)


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        console.print(f"[bold]{label.ljust(width)}[/]  ", end="", highlight=False)
        _say(value)


# --------------------------------------------------------------------------------------------------------
# delete, invalidate-tag, clear
# --------------------------------------------------------------------------------------------------------


def _tell_l1(target: _Target) -> str:
    return " (L1 copies in running processes told to drop theirs)" if target.tiered else ""


@command.command("delete")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@config_option
@schema_option
def delete(name: str, keys: tuple[str, ...], config_file: Path | None, schema_spec: str | None) -> None:
    """Delete KEYs from NAME, in Redis and in every running process's L1.

    Exit codes: 0 done (a key that is not there is reported, not an error);
    2 could not run (unknown namespace, memory namespace, Redis unreachable or failing mid-command).
    """
    target = _target(_load(config_file), name)
    _need_shared(target, "delete")
    with _open(target, schema_spec, writes=True) as cache:
        before = cache.core.metrics.errors.value
        found = [key for key in keys if cache.delete(key)]
        _outage_check(cache, before, target)
    for key in keys:
        _say(f"deleted {key}" if key in found else f"not found: {key}")
    _say(f"deleted {len(found)} of {len(keys)} key(s) from {name}{_tell_l1(target)}")


@command.command("invalidate-tag")
@click.argument("name")
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
@config_option
@schema_option
def invalidate_tag(
    name: str, tags: tuple[str, ...], config_file: Path | None, schema_spec: str | None
) -> None:
    """Invalidate TAGs in NAME: every entry written with one becomes a miss, in every process.

    Bumps each tag's stamp in Redis exactly as Cache.invalidate_tag does (O(1), nothing is scanned);
    a two-tier namespace also publishes the new stamp so L1 copies stop being served.

    Exit codes: 0 done; 2 could not run (unknown namespace, memory namespace, Redis unreachable or
    failing mid-command).
    """
    target = _target(_load(config_file), name)
    _need_shared(target, "invalidate-tag")
    with _open(target, schema_spec, writes=True) as cache:
        before = cache.core.metrics.errors.value
        for tag in tags:
            cache.invalidate_tag(tag)
        _outage_check(cache, before, target)
        stamps = cache.core.remote.tag_stamps(list(tags))
        if stamps is None:
            _stopped(target, "while reading the new tag stamps")
    for tag, stamp in zip(tags, stamps, strict=True):
        _say(f"invalidated tag {tag!r} of {name}: stamp now {stamp}")
    _say(f"entries written with these tags are misses from now on{_tell_l1(target)}")


@command.command("clear")
@click.argument("name")
@config_option
@schema_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear(name: str, config_file: Path | None, schema_spec: str | None, yes: bool) -> None:
    """Remove every entry of NAME from Redis and from every process's L1 (tag stamps stay: they only grow).

    Asks for confirmation unless --yes.

    Exit codes: 0 cleared; 1 the confirmation was declined;
    2 could not run (unknown namespace, memory namespace, Redis unreachable or failing mid-command).
    """
    target = _target(_load(config_file), name)
    _need_shared(target, "clear")
    with _open(target, schema_spec, writes=True) as cache:
        prefix = cache.core.prefix
        stamps = cache.core.remote.tag_prefix
        kept: list[str] = []

        def keep_stamps(key: str) -> None:
            if key.startswith(stamps):
                kept.append(key)

        try:
            count = _scan(cache.core.remote.client, prefix + "*", keep_stamps)
        except (_redis_error(), OSError) as exc:
            _unreachable(target, exc)
        count -= len(kept)
        if not yes:
            click.confirm(
                f"Remove {count} key(s) under {prefix} from {_mask(target.url)}"
                f"{' and the L1 copies of running processes' if target.tiered else ''}?",
                abort=True,
            )
        before = cache.core.metrics.errors.value
        cache.clear()
        _outage_check(cache, before, target)
    _say(f"cleared {name}: {count} key(s) under {prefix} removed{_tell_l1(target)}")


# --------------------------------------------------------------------------------------------------------
# warm
# --------------------------------------------------------------------------------------------------------


def _warmer_functions(target: _Target) -> dict[str, Callable[[], Any]]:
    """Each declared warmer's function, imported (exit 2 for none declared or one that does not import)."""
    specs: list[str] = target.table["warmers"]
    if not specs:
        _fail(
            f'namespace {target.name!r} declares no warmers: add warmers = ["package.module:function"] to '
            f"[cache.namespaces.{target.name}] in {target.where}."
        )
    from buttress.cache.registry import resolve_warmer

    if os.getcwd() not in sys.path:  # the working directory importable, as with ``python -m``
        sys.path.insert(0, os.getcwd())
    functions = {}
    for i, spec in enumerate(specs):
        try:
            functions[spec] = resolve_warmer(spec, f"[cache.namespaces.{target.name}].warmers[{i}]")
        except ConfigError as exc:
            _fail(str(exc))
    return functions


def _print_warm_report(name: str, warmers: list[Any], report: Any) -> None:
    table = Table(title=escape(f"warmed {name}: {report.entries} entries in {report.seconds:.2f}s"))
    for column in ("warmer", "required", "result"):
        table.add_column(column, overflow="fold")
    for w in warmers:
        error = report.failed.get(w.name)
        result = (
            f"{report.loaded[w.name]} entries"
            if error is None
            else f"FAILED: {type(error).__name__}: {error}"
        )
        table.add_row(escape(w.name), "yes" if w.required else "", escape(result))
    console.print(table)


@command.command("warm")
@click.argument("name")
@config_option
@schema_option
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Warmers at once."
)
def warm(name: str, config_file: Path | None, schema_spec: str | None, concurrency: int) -> None:
    """Run NAME's warmers ([cache.namespaces.NAME].warmers) and write what they return.

    Each warmer is "package.module:function": no arguments, returns {key: value} or (key, value) pairs
    (a coroutine function is run too). A warmer is required when [cache].warmers_required lists its
    "module:function" or its function name.

    Exit codes: 0 no required warmer failed (others' failures are reported); 1 a required warmer
    failed; 2 could not run (unknown or memory namespace, no warmers declared, a warmer that does not
    import, Redis unreachable or failing mid-command).
    """
    from buttress.cache.warming import Progress as WarmProgress
    from buttress.cache.warming import Warmer, WarmingError
    from buttress.cache.warming import warm as run_warmers

    target = _target(_load(config_file), name)
    _need_shared(target, "warm")
    functions = _warmer_functions(target)
    required = set(target.section["warmers_required"])
    with _open(target, schema_spec, writes=True) as cache:
        warmers = [
            Warmer(spec, cache, fn, required=spec in required or spec.rpartition(":")[2] in required)
            for spec, fn in functions.items()
        ]
        before = cache.core.metrics.errors.value
        with progress() as bar:
            task = bar.add_task(f"warm {name}", total=len(warmers))

            def step(p: WarmProgress) -> None:
                bar.update(task, completed=p.done)

            try:
                report = run_warmers(warmers, concurrency=concurrency, on_progress=step)
                failed_required = False
            except WarmingError as exc:
                report = exc.report
                failed_required = True
        _outage_check(cache, before, target)
    _print_warm_report(name, warmers, report)
    if failed_required:
        err_console.print("[red]a required warmer failed[/]", highlight=False)
        raise SystemExit(1)
    if report.failed:
        err_console.print(f"[yellow]{len(report.failed)} warmer(s) failed (not required)[/]", highlight=False)
