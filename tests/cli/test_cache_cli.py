"""`buttress cache list|stats|get|delete|invalidate-tag|clear|warm` against a real redis-server.

The namespaces come from a temporary buttress.toml: `events` (Redis with an L1 per process), `plain`
(Redis only), `speakers` (memory). A `Cache` built in the test plays the running service, so each write
command is checked where it matters: the service's own L1 copy goes.
"""

from __future__ import annotations

import importlib
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import servers  # tests/servers.py: pytest puts tests/ on sys.path
from buttress import config
from buttress.cache import Cache
from buttress.cache.serialize import Envelope, PickleSerializer, encode
from buttress.cli.main import cli
from buttress.telemetry import Registry

pytestmark = pytest.mark.redis

_modules = itertools.count()

TOML = """
[cache]
backend = "{url}"
warmers_required = {required}

[cache.namespaces.events]
ttl = "15m"
ttl_strategy = "adaptive"
warmers = {warmers}

[cache.namespaces.plain]
tiered = false
ttl_strategy = "jittered"
version = "7"

[cache.namespaces.speakers]
backend = "memory"
max_entries = 500
"""

WARMERS = """
import asyncio
server = None

def ok():
    return {f"event:{i}": {"n": i} for i in range(3)}

async def aok():
    await asyncio.sleep(0)
    return [("async", "yes")]

def broken():
    raise RuntimeError("database down")

def kill_redis():
    server.kill()  # the outage arrives while the command runs
    return {"k": 1}

not_a_function = 3
"""


def run(*args: str, input: str | None = None) -> Result:
    # stderr is kept apart: the progress bar and errors go there, values and tables to stdout.
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture(autouse=True)
def _no_project_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from buttress.cli import _console

    # Wide consoles: rich wraps at 80 columns off a terminal, which would split temporary paths.
    monkeypatch.setattr(_console.console, "_width", 400)
    monkeypatch.setattr(_console.err_console, "_width", 400)
    monkeypatch.delenv("BUTTRESS_CONFIG", raising=False)
    previous = config.use(config.loads(""))
    yield
    config.use(previous)


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    name = f"cache_cli_mod_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def write_toml(
    tmp_path: Path, url: str, warmers: list[str] | None = None, required: list[str] | None = None
) -> str:
    path = tmp_path / "buttress.toml"
    path.write_text(
        TOML.format(url=url, warmers=json.dumps(warmers or []), required=json.dumps(required or []))
    )
    return str(path)


@pytest.fixture
def url(redis_server: Any) -> str:
    return str(redis_server.url)


@pytest.fixture
def toml(tmp_path: Path, url: str) -> str:
    return write_toml(tmp_path, url)


@pytest.fixture
def service(url: str) -> Iterator[Cache]:
    """The `events` namespace as a running service holds it: Redis plus its own L1."""
    cache = Cache("events", backend=url, ttl=900, registry=Registry())
    yield cache
    cache.close()


@pytest.fixture
def raw(redis_server: Any) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def in_l1(cache: Cache, key: str) -> bool:
    assert cache.core.store is not None
    return cache.core.store.peek(key) is not None


def wait_until_gone(cache: Cache, key: str) -> None:
    """Wait (on the tiered backend's condition, no sleep) until an invalidation removed ``key`` from L1."""
    assert cache.core.tiered.wait_for(lambda: not in_l1(cache, key), 5), "the L1 copy was not dropped"


# --------------------------------------------------------------------------------------------------------
# help and list
# --------------------------------------------------------------------------------------------------------


def test_help_lists_the_group_and_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "cache" in result.output
    result = run("cache", "--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.output
    for name in ("list", "stats", "get", "delete", "invalidate-tag", "clear", "warm"):
        assert name in result.output
    assert "Exit 0 when a read would return" in run("cache", "get", "--help").output


def test_list_shows_each_namespace_with_the_password_masked(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "redis://app:hunter2@127.0.0.1:1/0", warmers=["wm:ok"])
    result = run("cache", "list", "--config", toml, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    rows = {row["namespace"]: row for row in json.loads(result.stdout)["namespaces"]}
    assert rows["events"] == {
        "namespace": "events",
        "backend": "redis://app:***@127.0.0.1:1/0 + L1",
        "ttl_strategy": "adaptive p_stale=0.05 [1m30s, 2h30m]",
        "ttl": 900.0,
        "max_entries": 10000,
        "version": "1",
        "warmers": ["wm:ok"],
    }
    assert rows["plain"]["backend"] == "redis://app:***@127.0.0.1:1/0 (no L1)"
    assert (rows["plain"]["ttl_strategy"], rows["plain"]["version"]) == ("jittered ±10%", "7")
    assert (rows["speakers"]["backend"], rows["speakers"]["max_entries"]) == ("memory", 500)

    result = run("cache", "list", "--config", toml)
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "3 cache namespace(s)" in result.output
    for text in ("events", "plain", "speakers", "15m", "500", "memory"):
        assert text in result.output


def test_list_and_stats_without_any_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("cache", "list")
    assert result.exit_code == 0
    assert "No [cache.namespaces.<name>]" in result.output
    assert "embedded defaults" in result.output
    result = run("cache", "stats", "events")
    assert result.exit_code == 2
    assert "declares no [cache.namespaces.<name>] table" in result.stderr
    assert "--config" in result.stderr


def test_bad_configuration_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "buttress.toml"
    bad.write_text('[cache.namespaces.events]\nttl = "-1m"\nwarmers = ["not a spec"]\n')
    result = run("cache", "list", "--config", str(bad))
    assert result.exit_code == 2
    assert "cache.namespaces.events.ttl" in result.stderr
    assert "cache.namespaces.events.warmers[0]" in result.stderr
    assert "package.module:function" in result.stderr
    result = run("cache", "list", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_unknown_namespace_names_the_known_ones(toml: str) -> None:
    for args in (("stats", "evnts"), ("get", "evnts", "k"), ("delete", "evnts", "k"), ("warm", "evnts")):
        result = run("cache", *args, "--config", toml)
        assert result.exit_code == 2, args
        assert "unknown cache namespace 'evnts' (did you mean \"events\"?)" in result.stderr
        assert "events, plain, speakers" in result.stderr


# --------------------------------------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------------------------------------


def test_stats_counts_entries_tags_and_memory(toml: str, service: Cache, url: str) -> None:
    for i in range(5):
        service.set(f"event:{i}", {"n": i})
    service.set("list", [1, 2], tags=["events-list"])
    service.invalidate_tag("events-list")
    with Cache("events", backend=url, version="0", registry=Registry(), tiered=False) as old:
        old.set("stale-version", 1)
    result = run("cache", "stats", "events", "--config", toml, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["prefix"] == "buttress:events:1:-:"
    assert data["pattern"] == "buttress:events:*"
    assert (data["keys"], data["entries"], data["tag_stamps"], data["leases"]) == (8, 6, 1, 0)
    assert data["groups"] == [
        {"version": "0", "fingerprint": "-", "entries": 1, "tag_stamps": 0, "leases": 0, "current": False},
        {"version": "1", "fingerprint": "-", "entries": 6, "tag_stamps": 1, "leases": 0, "current": True},
    ]
    memory = data["memory"]
    assert memory["exact"] is True
    assert memory["sampled_keys"] == 8
    assert memory["bytes"] > 8 * 20  # MEMORY USAGE counts the key, the value and Redis's overhead
    assert data["tiered"] is True

    result = run("cache", "stats", "events", "--config", toml)
    assert result.exit_code == 0
    assert "SCAN buttress:events:*: 8 key(s)" in result.output
    assert "6 entries" in result.output
    assert "current" in result.output
    assert "MEMORY USAGE of every key" in result.output


def test_stats_of_a_big_namespace_samples_memory(toml: str, url: str, raw: Any) -> None:
    with Cache("plain", backend=url, version="7", tiered=False, registry=Registry()) as plain:
        plain.set_many({f"k{i}": "x" * 50 for i in range(1250)})  # past one spinner update
    raw.set("buttress:plain:7:-:k0:lease", "token")
    result = run("cache", "stats", "plain", "--config", toml, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["keys"], data["entries"], data["leases"], data["tiered"]) == (1251, 1250, 1, False)
    memory = data["memory"]
    assert memory["exact"] is False
    assert memory["sampled_keys"] == 100
    assert "100 sampled keys" in memory["method"]
    assert 1251 * 50 < memory["bytes"] < 1251 * 1000
    result = run("cache", "stats", "plain", "--config", toml)
    assert "approx." in result.output
    assert "sampled keys" in result.output


def test_stats_of_a_memory_namespace_points_to_the_process(toml: str) -> None:
    result = run("cache", "stats", "speakers", "--config", toml)
    assert result.exit_code == 0
    assert "memory cache" in result.output
    assert "/metrics" in result.output
    assert "dashboard" in result.output
    result = run("cache", "stats", "speakers", "--config", toml, "--format", "json")
    data = json.loads(result.stdout)
    assert (data["backend"], data["stats"]) == ("memory", None)
    assert "/metrics" in data["note"]


# --------------------------------------------------------------------------------------------------------
# get
# --------------------------------------------------------------------------------------------------------


def test_get_shows_value_ttl_tags_and_frame(toml: str, service: Cache, url: str) -> None:
    service.set("event:py25", {"title": "PyCon"}, tags=["events-list", "speakers"])
    result = run("cache", "get", "events", "event:py25", "--config", toml)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "{'title': 'PyCon'}" in out
    assert "fresh: a read returns this value" in out
    assert "buttress:events:1:-:event:py25" in out
    assert "(Redis TTL)" in out
    assert "events-list (stamp 0, current)" in out
    assert "serializer pickle" in out
    assert "freshness+tags" in out

    service.invalidate_tag("speakers")
    result = run("cache", "get", "events", "event:py25", "--config", toml)
    assert result.exit_code == 1
    assert "a read misses" in result.stdout
    assert "speakers (stamp 0, now 1: invalidated)" in result.stdout
    assert "{'title': 'PyCon'}" in result.stdout  # still shown


def test_get_shows_json_and_bytes_values(toml: str, url: str) -> None:
    with Cache("events", backend=url, serializer="json", tiered=False, registry=Registry()) as cache:
        cache.set("doc", {"a": [1, 2], "b": "é"})
    result = run("cache", "get", "events", "doc", "--config", toml)
    assert result.exit_code == 0, result.output
    assert '"a": [' in result.stdout
    assert '"b": "é"' in result.stdout
    assert "serializer json" in result.stdout
    assert "bare value" in result.stdout
    with Cache("events", backend=url, serializer="bytes", tiered=False, registry=Registry()) as cache:
        cache.set("blob", b"\x00\x01")
    result = run("cache", "get", "events", "blob", "--config", toml)
    assert result.exit_code == 0
    assert "b'\\x00\\x01'" in result.stdout


def test_get_missing_key_exits_1(toml: str) -> None:
    result = run("cache", "get", "events", "nope", "--config", toml)
    assert result.exit_code == 1
    assert "no entry 'nope' in namespace 'events'" in result.stderr
    assert "--schema" in result.stderr


def test_get_reports_corrupt_and_foreign_entries(toml: str, raw: Any) -> None:
    prefix = "buttress:events:1:-:"
    raw.set(prefix + "garbage", b"not a frame")
    raw.hset(prefix + "hash", "field", "1")
    raw.set(prefix + "badpickle", b"\xb7\x01\x00p\x80\x05garbage")
    raw.set(prefix + "unimportable", b"\xb7\x01\x00pcnonexistent_module_xyz\nThing\n)\x81.")
    raw.set(prefix + "custom", b"\xb7\x01\x00mmsgpack-bytes")
    raw.set(prefix + "badjson", b"\xb7\x01\x00j{nope")
    raw.set(prefix + "expired", encode(PickleSerializer(), Envelope("old", time.time() - 60, 0.5)))
    cases = {
        "garbage": (1, "corrupt or foreign: not a buttress frame"),
        "hash": (1, "a Redis hash, not a buttress entry"),
        "badpickle": (1, "the pickled payload does not load"),
        "unimportable": (0, "cannot import"),
        "custom": (0, "custom serializer 'm'"),
        "badjson": (1, "the JSON payload does not parse"),
        "expired": (1, "freshness ended"),
    }
    for key, (code, says) in cases.items():
        result = run("cache", "get", "events", key, "--config", toml)
        assert result.exit_code == code, (key, result.output)
        assert says in " ".join(result.stdout.split()), (key, result.stdout)
    assert "expired 1m ago" in run("cache", "get", "events", "expired", "--config", toml).stdout


def test_get_with_schema_addresses_the_fingerprinted_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, url: str
) -> None:
    name = module(
        tmp_path,
        monkeypatch,
        "import dataclasses\n@dataclasses.dataclass\nclass Event:\n    code: str\n    title: str\n",
    )
    event_type = __import__(name).Event
    with Cache("events", backend=url, schema=event_type, tiered=False, registry=Registry()) as cache:
        cache.set("event:py25", event_type("py25", "PyCon"))
        prefix = cache.core.prefix
    result = run("cache", "get", "events", "event:py25", "--config", toml)
    assert result.exit_code == 1
    result = run("cache", "stats", "events", "--config", toml)
    assert "pass --schema" in " ".join(result.stdout.split())
    result = run("cache", "get", "events", "event:py25", "--config", toml, "--schema", f"{name}:Event")
    assert result.exit_code == 0, result.output
    assert "Event(code='py25', title='PyCon')" in result.stdout
    assert prefix in result.stdout
    result = run("cache", "get", "events", "k", "--config", toml, "--schema", f"{name}:Nope")
    assert result.exit_code == 2
    assert "has no 'Nope'" in result.stderr
    result = run("cache", "get", "events", "k", "--config", toml, "--schema", "no_such_module_xyz:T")
    assert result.exit_code == 2
    assert "cannot import" in result.stderr
    assert run("cache", "get", "events", "k", "--config", toml, "--schema", "nocolon").exit_code == 2


# --------------------------------------------------------------------------------------------------------
# delete, invalidate-tag, clear
# --------------------------------------------------------------------------------------------------------


def test_delete_removes_keys_everywhere_including_l1(toml: str, service: Cache) -> None:
    service.set("a", 1)
    service.set("b", 2)
    assert in_l1(service, "a")
    result = run("cache", "delete", "events", "a", "missing", "--config", toml)
    assert result.exit_code == 0, result.output
    assert "deleted a" in result.stdout
    assert "not found: missing" in result.stdout
    assert "deleted 1 of 2 key(s)" in result.stdout
    wait_until_gone(service, "a")
    assert service.get("a") is None
    assert service.get("b") == 2
    assert run("cache", "delete", "events", "--config", toml).exit_code == 2  # KEY... is required


def test_invalidate_tag_bumps_the_stamp_and_reaches_l1(toml: str, service: Cache) -> None:
    service.set("list", [1, 2, 3], tags=["events-list"])
    service.set("other", "kept", tags=["speakers"])
    assert service.get("list") == [1, 2, 3]  # served from the L1 copy
    result = run("cache", "invalidate-tag", "events", "events-list", "--config", toml)
    assert result.exit_code == 0, result.output
    assert "invalidated tag 'events-list' of events: stamp now 1" in result.stdout
    # The stamp arrives by pub/sub; the L1 copy is then judged against it.
    assert service.core.tiered.wait_for(lambda: service.get("list") is None, 5)
    assert service.get("other") == "kept"
    # The same counter Cache.invalidate_tag moves: the next bump from code continues from it.
    service.invalidate_tag("events-list")
    assert service.core.remote.tag_stamps(["events-list"]) == [2]


def test_invalidate_tag_on_a_redis_only_namespace(toml: str, url: str) -> None:
    with Cache("plain", backend=url, version="7", tiered=False, registry=Registry()) as plain:
        plain.set("k", "v", tags=["t"])
        assert plain.get("k") == "v"
        result = run("cache", "invalidate-tag", "plain", "t", "u", "--config", toml)
        assert result.exit_code == 0, result.output
        assert "stamp now 1" in result.stdout
        assert "L1" not in result.stdout
        assert plain.get("k") is None


def test_clear_asks_unless_yes_and_drops_l1(toml: str, service: Cache, raw: Any) -> None:
    service.set_many({"a": 1, "b": 2})
    service.invalidate_tag("speakers")  # a tag stamp key: not an entry, kept by clear
    assert service.get("a") == 1
    result = run("cache", "clear", "events", "--config", toml, input="n\n")
    assert result.exit_code == 1
    assert "Remove 2 key(s) under buttress:events:1:-:" in result.output
    assert "Aborted" in result.output
    assert raw.exists("buttress:events:1:-:a")

    result = run("cache", "clear", "events", "--config", toml, input="y\n")
    assert result.exit_code == 0, result.output
    assert "cleared events: 2 key(s)" in result.stdout
    assert not raw.exists("buttress:events:1:-:a")
    wait_until_gone(service, "a")

    service.set("c", 3)
    result = run("cache", "clear", "events", "--config", toml, "--yes")
    assert result.exit_code == 0
    assert "Remove" not in result.output
    assert raw.keys("buttress:events:*") == [service.core.remote.tag_key("speakers").encode()]


# --------------------------------------------------------------------------------------------------------
# warm
# --------------------------------------------------------------------------------------------------------


def test_warm_runs_the_declared_warmers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, service: Cache
) -> None:
    name = module(tmp_path, monkeypatch, WARMERS)
    service.set("event:0", "old")
    assert in_l1(service, "event:0")
    toml = write_toml(tmp_path, url, warmers=[f"{name}:ok", f"{name}:aok", f"{name}:broken"])
    result = run("cache", "warm", "events", "--config", toml)
    assert result.exit_code == 0, result.output  # the failed warmer is not required
    out = " ".join(result.stdout.split())
    assert "warmed events: 4 entries" in out
    assert "3 entries" in out
    assert "RuntimeError: database down" in out
    assert "warm events" in result.stderr  # the progress bar
    assert "1 warmer(s) failed (not required)" in result.stderr
    wait_until_gone(service, "event:0")  # the write replaced the running process's L1 copy
    assert service.get("event:0") == {"n": 0}
    assert service.get("async") == "yes"


def test_warm_exits_1_when_a_required_warmer_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    name = module(tmp_path, monkeypatch, WARMERS)
    toml = write_toml(tmp_path, url, warmers=[f"{name}:ok", f"{name}:broken"], required=["broken"])
    result = run("cache", "warm", "events", "--config", toml)
    assert result.exit_code == 1
    assert "a required warmer failed" in result.stderr
    assert "yes" in result.stdout  # the required column
    toml = write_toml(tmp_path, url, warmers=[f"{name}:ok"], required=[f"{name}:ok"])
    assert run("cache", "warm", "events", "--config", toml).exit_code == 0


def test_warm_refuses_what_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    name = module(tmp_path, monkeypatch, WARMERS)
    toml = write_toml(tmp_path, url)
    result = run("cache", "warm", "events", "--config", toml)
    assert result.exit_code == 2
    assert "declares no warmers" in result.stderr
    assert "warmers = " in result.stderr
    for spec, says in (
        (f"{name}:not_a_function", "is not a function"),
        (f"{name}:missing", "has no 'missing'"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
    ):
        result = run("cache", "warm", "events", "--config", write_toml(tmp_path, url, warmers=[spec]))
        assert result.exit_code == 2, spec
        assert says in result.stderr


def test_redis_failing_mid_command_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_server: Any
) -> None:
    name = module(tmp_path, monkeypatch, WARMERS)
    importlib.import_module(name).server = redis_server  # the warmer kills it mid-command
    toml = write_toml(tmp_path, redis_server.url, warmers=[f"{name}:kill_redis"])
    result = run("cache", "warm", "events", "--config", toml)
    assert result.exit_code == 2
    assert "failed during the command" in result.stderr


# --------------------------------------------------------------------------------------------------------
# what needs a shared backend, and Redis that cannot be reached
# --------------------------------------------------------------------------------------------------------

SHARED_COMMANDS = [
    ("get", "k"),
    ("delete", "k"),
    ("invalidate-tag", "t"),
    ("clear", "--yes"),
    ("warm",),
]


@pytest.mark.parametrize("args", SHARED_COMMANDS, ids=[a[0] for a in SHARED_COMMANDS])
def test_memory_namespace_needs_a_shared_backend(toml: str, args: tuple[str, ...]) -> None:
    result = run("cache", args[0], "speakers", *args[1:], "--config", toml)
    assert result.exit_code == 2
    text = " ".join(result.stderr.split())
    assert "namespace 'speakers' is a memory cache" in text
    assert f"`buttress cache {args[0]}` cannot reach them" in text


@pytest.mark.parametrize(
    "args", [("stats",), *SHARED_COMMANDS], ids=["stats", *[a[0] for a in SHARED_COMMANDS]]
)
def test_unreachable_redis_exits_2_with_the_url_masked(tmp_path: Path, args: tuple[str, ...]) -> None:
    # A port nothing listens on: connection refused at once.
    toml = write_toml(
        tmp_path, f"redis://app:hunter2@127.0.0.1:{servers.free_port()}/0", warmers=["os:getcwd"]
    )
    result = run("cache", args[0], "events", *args[1:], "--config", toml)
    assert result.exit_code == 2
    text = " ".join(result.stderr.split())
    assert "hunter2" not in result.output
    assert "cannot reach Redis for cache namespace 'events' at redis://app:***@127.0.0.1:" in text
    assert "Check that the server is running" in text
    assert "[cache].backend" in text


def test_get_on_a_namespace_that_was_never_written(toml: str) -> None:
    # Nothing under the prefix at all: still a clean miss, not an error.
    result = run("cache", "get", "plain", "k", "--config", toml)
    assert result.exit_code == 1
    assert "Redis key buttress:plain:7:-:k" in " ".join(result.stderr.split())
