"""Fallback: fixed values, handlers, per-exception mappings and the stale-data hook."""

from __future__ import annotations

from typing import Any

import pytest

from buttress.errors import ConfigError
from buttress.resilience import NO_FALLBACK, Fallback
from buttress.telemetry import Registry
from buttress.testing import Faults


def failing(error: BaseException) -> Any:
    return Faults().always(error).wrap(lambda *a, **k: "real")


def test_value(registry) -> None:
    fallback = Fallback([], name="f", registry=registry)
    assert fallback.call(failing(ConnectionError())) == []
    assert fallback.call(lambda: "real") == "real"
    assert registry.value("buttress_fallback_calls", {"name": "f", "kind": "fallback"}) == 1


def test_handler_gets_the_error() -> None:
    fallback = Fallback(handler=lambda e: f"sorry: {e}", registry=Registry())
    assert fallback.call(failing(TimeoutError("slow"))) == "sorry: slow"


def test_mapping_most_specific_first() -> None:
    fallback = Fallback(
        mapping={
            OSError: "os",
            ConnectionError: lambda e: f"conn {type(e).__name__}",
            Exception: NO_FALLBACK,
        },
        registry=Registry(),
    )
    assert fallback.call(failing(ConnectionResetError())) == "conn ConnectionResetError"
    assert fallback.call(failing(FileNotFoundError())) == "os"
    with pytest.raises(KeyError):
        fallback.call(failing(KeyError("unmapped")))
    registry = Registry()
    only_connections = Fallback(mapping={ConnectionError: "offline"}, name="m", registry=registry)
    with pytest.raises(KeyError):
        only_connections.call(failing(KeyError("no entry covers it")))
    assert registry.value("buttress_fallback_calls", {"name": "m", "kind": "propagated"}) == 1


def test_hook_sees_arguments_and_may_decline(registry) -> None:
    stale = {"events": ["cached"]}

    def serve_stale(error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return stale.get(args[0], NO_FALLBACK)

    fallback = Fallback(hook=serve_stale, name="f", registry=registry)
    load = fallback(failing(ConnectionError("db down")))
    assert load("events") == ["cached"]
    with pytest.raises(ConnectionError):
        load("speakers")
    assert registry.value("buttress_fallback_calls", {"name": "f", "kind": "propagated"}) == 1


def test_only_selected_errors_fall_back() -> None:
    fallback = Fallback("x", on=ConnectionError, on_if=lambda e: "retryable" in str(e), registry=Registry())
    assert fallback.call(failing(ConnectionError("retryable"))) == "x"
    with pytest.raises(ConnectionError):
        fallback.call(failing(ConnectionError("fatal")))
    with pytest.raises(ValueError):
        fallback.call(failing(ValueError("retryable")))
    with pytest.raises(KeyboardInterrupt):
        Fallback("x", on=BaseException, registry=Registry()).call(failing(KeyboardInterrupt()))


async def test_async_handlers_are_awaited() -> None:
    async def answer(error: BaseException) -> str:
        return "async answer"

    async def broken() -> str:
        raise ConnectionError

    fallback = Fallback(handler=answer, registry=Registry())
    assert await fallback(broken)() == "async answer"
    assert await Fallback(7, registry=Registry()).acall(broken) == 7
    with pytest.raises(TypeError, match="async handler"):
        fallback(lambda: None)


def test_exactly_one_answer() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        Fallback(registry=Registry())
    with pytest.raises(ConfigError, match="exactly one"):
        Fallback(1, handler=lambda e: 2, registry=Registry())
    with pytest.raises(ConfigError, match=r"Fallback\.mapping"):
        Fallback(mapping={"ConnectionError": 1}, registry=Registry())  # type: ignore[dict-item]
