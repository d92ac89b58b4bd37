"""`buttress dlq list|show|replay|purge` against the SQLite and the Redis store."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from buttress import config
from buttress.cli.main import cli
from buttress.resilience import registry as named
from buttress.resilience.dlq import DeadLetter, open_store

_modules = itertools.count()


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture(autouse=True)
def _no_project_config() -> Iterator[None]:
    named.clear()
    previous = config.use(config.loads(""))
    yield
    config.use(previous)
    named.clear()


@pytest.fixture(params=["sqlite", "redis"])
def store_address(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'dlq.db'}"
    server = request.getfixturevalue("redis_server")
    return str(server.url)


def fill(address: str, count: int = 3, policy: str = "email", age: float = 0.0) -> list[str]:
    with open_store(address) as store:
        ids = []
        for n in range(count):
            letter = DeadLetter(
                id=f"{policy}-{n}-{time.monotonic_ns()}",
                policy=policy,
                payload={"n": n},
                error_type="ConnectionError",
                error_message="smtp down",
                attempts=3,
                created=time.time() - age,
            )
            letter = DeadLetter(**{**letter.to_json(), "idempotency_key": letter.id})
            store.put(letter)
            ids.append(letter.id)
        return ids


def handler_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    name = f"dlq_handlers_{next(_modules)}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_help_lists_the_group() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "dlq" in result.output
    assert run("dlq", "--help").exit_code == 0


def test_list_show_filters(store_address: str) -> None:
    ids = fill(store_address, 2, "email")
    fill(store_address, 1, "sms")
    result = run("dlq", "list", "--store", store_address)
    assert result.exit_code == 0, result.output
    assert "3 of 3 dead letter(s)" in result.output
    assert "smtp down" in result.output  # the error column (rich folds it at the test's 80 columns)
    result = run("dlq", "list", "--store", store_address, "--policy", "email", "--json")
    assert result.exit_code == 0
    assert [item["id"] for item in json.loads(result.stdout)] == ids
    result = run("dlq", "show", ids[0], "--store", store_address, "--json")
    assert json.loads(result.stdout)["payload"] == {"n": 0}
    result = run("dlq", "show", ids[1], "--store", store_address)
    assert "attempts" in result.output
    assert '{"n": 1}' in result.output
    assert run("dlq", "show", "nope", "--store", store_address).exit_code == 2


def test_list_older_than(tmp_path: Path) -> None:
    address = f"sqlite:{tmp_path / 'dlq.db'}"
    old = fill(address, 2, age=7200)
    fill(address, 2, age=60)
    result = run("dlq", "list", "--store", address, "--older-than", "1h", "--json")
    assert [item["id"] for item in json.loads(result.stdout)] == old
    result = run("dlq", "list", "--store", address, "--older-than", "soon")
    assert result.exit_code == 2
    assert "duration" in result.output


def test_replay_with_handler_and_progress(store_address: str, tmp_path: Path, monkeypatch) -> None:
    fill(store_address, 4)
    module = handler_module(
        tmp_path,
        monkeypatch,
        "from buttress.resilience import current_letter\n"
        "done = []\n"
        "def send(payload):\n"
        "    if payload['n'] == 2:\n"
        "        raise ValueError('bad address')\n"
        "    done.append((payload['n'], current_letter().idempotency_key))\n",
    )
    result = run(
        "dlq", "replay", "--store", store_address, "--policy", "email", "--handler", f"{module}:send"
    )
    assert result.exit_code == 1, result.output  # one item failed again
    assert "replayed 3, failed 1, remaining 1" in result.stdout
    assert "Replaying 4 item(s)" in result.stderr
    assert "replay email" in result.stderr  # the progress bar
    assert [n for n, _ in sys.modules[module].done] == [0, 1, 3]
    result = run("dlq", "list", "--store", store_address, "--json")
    (left,) = json.loads(result.stdout)
    assert (left["payload"], left["replays"], left["error_type"]) == ({"n": 2}, 1, "ValueError")


def test_replay_under_the_configured_pipeline_stops_on_an_open_circuit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"sqlite:{tmp_path / 'dlq.db'}"
    config.use(
        config.loads(
            f"[resilience.policies.email]\nretry = 1\nbreaker = {{ window = 2, minimum_calls = 2 }}\n"
            f'dead_letter = "{address}"\n'
        )
    )
    fill(address, 5)
    module = handler_module(
        tmp_path,
        monkeypatch,
        "from buttress.resilience import policy\n"
        "calls = []\n"
        "@policy('email')\n"
        "def send(payload):\n"
        "    calls.append(payload['n'])\n"
        "    raise ConnectionError('provider down')\n",
    )
    # no --store: the policy's dead_letter store is used
    result = run("dlq", "replay", "--policy", "email", "--handler", f"{module}:send")
    assert result.exit_code == 1, result.output
    assert "stopped" in result.stdout
    assert "open" in result.stdout
    assert sys.modules[module].calls == [0, 1]  # two failures opened the circuit; three items untouched
    with open_store(address) as store:
        assert store.count("email") == 5  # and nothing was dead-lettered twice


def test_async_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"sqlite:{tmp_path / 'dlq.db'}"
    fill(address, 2)
    module = handler_module(
        tmp_path, monkeypatch, "seen = []\nasync def send(payload):\n    seen.append(payload['n'])\n"
    )
    result = run("dlq", "replay", "--store", address, "--policy", "email", "--handler", f"{module}:send")
    assert result.exit_code == 0, result.output
    assert sys.modules[module].seen == [0, 1]


def test_bad_handlers(tmp_path: Path) -> None:
    address = f"sqlite:{tmp_path / 'dlq.db'}"
    for spec, message in [
        ("no_colon", "package.module:function"),
        ("surely_missing_module_xyz:f", "cannot import"),
        ("json:nope", "has no"),
        ("json:__doc__", "not a function"),
    ]:
        result = run("dlq", "replay", "--store", address, "--policy", "email", "--handler", spec)
        assert result.exit_code == 2
        assert message in result.output


def test_purge(store_address: str) -> None:
    ids = fill(store_address, 3)
    fill(store_address, 1, "sms")
    result = run("dlq", "purge", "--store", store_address, "--policy", "email", "--id", ids[0], input="n\n")
    assert result.exit_code == 1  # declined
    result = run("dlq", "purge", "--store", store_address, "--policy", "email", "--id", ids[0], input="y\n")
    assert result.exit_code == 0
    assert "purged 1" in result.output
    result = run("dlq", "purge", "--store", store_address, "--policy", "email", "--yes")
    assert "purged 2" in result.output
    assert "Nothing to purge" in run("dlq", "purge", "--store", store_address, "--policy", "email").output
    with open_store(store_address) as store:
        assert store.policies() == ["sms"]


def test_corrupt_or_unknown_store(tmp_path: Path) -> None:
    bad = tmp_path / "dlq.db"
    bad.write_bytes(b"garbage" * 1000)
    result = run("dlq", "list", "--store", f"sqlite:{bad}")
    assert result.exit_code == 2
    assert "corrupt" in result.output
    assert bad.read_bytes() == b"garbage" * 1000
    result = run("dlq", "list", "--store", "ftp://x")
    assert result.exit_code == 2
    assert "unknown dead-letter store" in result.output


def test_default_store_from_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fill(f"sqlite:{tmp_path / '.buttress' / 'dlq.db'}", 1)
    result = run("dlq", "list", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 1
