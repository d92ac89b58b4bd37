"""Wrappers built with the wrapped function's own parameters behave exactly like the function."""

from __future__ import annotations

import inspect
import traceback
from typing import Any

import pytest

from buttress.resilience import Bulkhead, CircuitBreaker, Fallback, Pipeline, Retry, _forward
from buttress.resilience._forward import GENERIC, forwarding
from buttress.telemetry import EventStream, Registry

SENTINEL: list[int] = []


def every_kind(a, b=2, /, c=3, *rest, d, e=SENTINEL, **extra):  # type: ignore[no-untyped-def]
    return (a, b, c, rest, d, e, extra)


def policies() -> list[Any]:
    registry = Registry()
    return [
        CircuitBreaker("f", registry=registry, events=EventStream()),
        CircuitBreaker("f", slow_call_duration=10, registry=registry, events=EventStream()),
        CircuitBreaker("f", window="time:10s", registry=registry, events=EventStream()),
        Retry("f", registry=registry),
        Bulkhead("f", registry=registry),
        Fallback(None, registry=registry),
        Pipeline(Retry("f", registry=registry), CircuitBreaker("f", registry=registry, events=EventStream())),
    ]


@pytest.mark.parametrize("policy", policies(), ids=lambda p: type(p).__name__)
def test_all_parameter_kinds_pass_through(policy: Any) -> None:
    wrapped = policy(every_kind)
    assert wrapped(1, d=4) == every_kind(1, d=4)
    assert wrapped(1, 5, 6, 7, 8, d=9, e=10, z=11) == every_kind(1, 5, 6, 7, 8, d=9, e=10, z=11)
    assert wrapped(1, d=4)[5] is SENTINEL  # defaults are the very same objects
    with pytest.raises(TypeError):
        wrapped(a=1, d=4)  # positional-only stays positional-only
    with pytest.raises(TypeError):
        wrapped(1)  # the keyword-only argument is still required
    assert inspect.signature(wrapped, follow_wrapped=False).parameters.keys() == (
        inspect.signature(every_kind).parameters.keys()
    )


def keyword_only(to, *, subject, urgent=False):  # type: ignore[no-untyped-def]
    return (to, subject, urgent)


@pytest.mark.parametrize("policy", policies(), ids=lambda p: type(p).__name__)
def test_keyword_only_parameters_after_a_bare_star(policy: Any) -> None:
    wrapped = policy(keyword_only)
    assert wrapped("ana", subject="hi") == ("ana", "hi", False)
    assert wrapped(to="bo", subject="x", urgent=True) == ("bo", "x", True)
    with pytest.raises(TypeError):
        wrapped("ana", "hi")  # still keyword-only
    assert str(inspect.signature(wrapped, follow_wrapped=False)) == "(to, *, subject, urgent=False)"


def test_compiled_wrappers_are_bounded() -> None:
    """A program that wraps ever new signatures (fresh lambdas) does not grow memory without limit."""

    class Echo:
        """Returns its one argument; each instance declares a parameter name of its own."""

        def __init__(self, name: str) -> None:
            self.__signature__ = inspect.Signature(
                [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY)]
            )

        def __call__(self, value: int) -> int:
            return value

    retry = Retry("f", registry=Registry())
    for n in range(_forward._MAX_COMPILED + 10):
        assert retry(Echo(f"p{n}"))(n) == n  # a distinct parameter name: a distinct wrapper source
    assert len(_forward._compiled) <= _forward._MAX_COMPILED


def test_names_that_would_shadow_the_wrapper_fall_back_to_star_args(registry, events) -> None:
    def uses_wrapper_names(fn: int, result: int, core: int = 1) -> int:
        return fn + result + core

    wrapped = CircuitBreaker("f", registry=registry, events=events)(uses_wrapper_names)
    assert wrapped(1, 2) == 4
    assert wrapped(fn=1, result=2, core=3) == 6
    assert list(inspect.signature(wrapped, follow_wrapped=False).parameters) == ["args", "kwargs"]


def test_builtins_methods_and_callable_objects(registry) -> None:
    retry = Retry("f", registry=registry)
    assert forwarding(print) in (GENERIC, forwarding(print))  # builtins: whatever inspect can read
    assert retry(max)(3, 9) == 9

    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        def greet(self, name: str) -> str:
            return f"{self.greeting} {name}"

        def __call__(self, name: str) -> str:
            return self.greet(name)

    greeter = Greeter("hi")
    assert retry(greeter.greet)("ana") == "hi ana"
    assert retry(greeter)("bo") == "hi bo"
    assert retry(Greeter)("hello").greeting == "hello"


def test_tracebacks_show_the_generated_source(registry, events) -> None:
    @CircuitBreaker("f", registry=registry, events=events)
    def broken(x: int) -> None:
        raise ValueError(x)

    with pytest.raises(ValueError) as info:
        broken(1)
    text = "".join(traceback.format_exception(info.value))
    assert "result = fn(x)" in text
