"""Warmers declared in buttress.toml, run at start-up with ``buttress.cache.warm_declared()``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import buttress.cache
from buttress import config
from buttress.cache.warming import Progress, WarmingError
from buttress.errors import ConfigError

HERE = __name__


def upcoming_events() -> dict[str, str]:
    """A warmer: what a service would read from its database at start-up."""
    return {"event:py25": "PyCon 25", "event:ep26": "EuroPython 26"}


async def top_speakers() -> list[tuple[str, str]]:
    """An async warmer, run on its own loop on a worker thread."""
    return [("speaker:ada", "Ada")]


def broken() -> dict[str, str]:
    """A warmer whose source is down."""
    raise RuntimeError("database unavailable")


NOT_A_FUNCTION = 42


@pytest.fixture
def configure(clean_registry: None) -> Iterator[Any]:
    previous: list[Any] = []

    def use(namespaces: dict[str, list[str]], required: tuple[str, ...] = ()) -> None:
        table = {name: {"warmers": specs} for name, specs in namespaces.items()}
        cfg = config.validate({"cache": {"namespaces": table, "warmers_required": list(required)}})
        previous.append(config.use(cfg))

    yield use
    if previous:
        config.use(previous[0])


def test_declared_warmers_fill_their_namespaces(configure: Any) -> None:
    configure({"events": [f"{HERE}:upcoming_events"], "speakers": [f"{HERE}:top_speakers"]})
    seen: list[Progress] = []
    report = buttress.cache.warm_declared(on_progress=seen.append)
    assert report.ok
    assert report.loaded == {f"events:{HERE}:upcoming_events": 2, f"speakers:{HERE}:top_speakers": 1}
    assert buttress.cache("events").get("event:py25") == "PyCon 25"
    assert buttress.cache("speakers").get("speaker:ada") == "Ada"
    assert sorted(p.done for p in seen) == [1, 2]


def test_a_failing_warmer_is_reported_and_does_not_stop_start_up(configure: Any) -> None:
    configure({"events": [f"{HERE}:broken", f"{HERE}:upcoming_events"]})
    report = buttress.cache.warm_declared(["events"])
    assert list(report.failed) == [f"events:{HERE}:broken"]
    assert buttress.cache("events").get("event:ep26") == "EuroPython 26"


@pytest.mark.parametrize("required", [f"{HERE}:broken", "broken"])
def test_a_required_warmer_fails_start_up(configure: Any, required: str) -> None:
    configure({"events": [f"{HERE}:broken", f"{HERE}:upcoming_events"]}, required=(required,))
    with pytest.raises(WarmingError, match="database unavailable") as caught:
        buttress.cache.warm_declared()
    assert caught.value.report.loaded == {f"events:{HERE}:upcoming_events": 2}  # the others still ran


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:fn", "cannot import 'no_such_module_xyz'"),
        (f"{HERE}:missing", f"{HERE!r} has no 'missing'"),
        (f"{HERE}:NOT_A_FUNCTION", "is not a function"),
    ],
)
def test_a_bad_warmer_is_a_config_error_naming_where(configure: Any, spec: str, message: str) -> None:
    configure({"events": [f"{HERE}:upcoming_events", spec]})
    with pytest.raises(ConfigError, match=r"cache\.namespaces\.events\.warmers\[1\]") as caught:
        buttress.cache.declared_warmers()
    assert message in str(caught.value)


def test_an_unknown_namespace_names_the_known_ones(configure: Any) -> None:
    configure({"events": []})
    with pytest.raises(ConfigError, match="'speakrs' is not configured; known: events"):
        buttress.cache.declared_warmers(["speakrs"])
    assert buttress.cache.declared_warmers() == []


def test_a_malformed_spec_is_caught_when_the_config_is_read(configure: Any) -> None:
    with pytest.raises(ConfigError, match=r"cache\.namespaces\.events\.warmers\[0\]: expected"):
        configure({"events": ["no_colon"]})
    with pytest.raises(ConfigError, match=r"where: warmer must look like 'package\.module:function'"):
        buttress.cache.registry.resolve_warmer("no_colon", "where")
