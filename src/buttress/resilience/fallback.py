"""Fallback: answer with something sensible when a call fails, instead of failing the caller.

Four ways to say what the answer is — give exactly one:

* ``Fallback(value)`` — a fixed value (``[]``, ``None``, a placeholder);
* ``Fallback(handler=fn)`` — ``fn(error)`` computes it (sync or async when guarding async calls);
* ``Fallback(mapping={ConnectionError: [], TimeoutError: fn})`` — per exception class, most specific
  class first (by the error's MRO); a callable in the mapping is called with the error, anything else is
  returned as it is. Errors matching no key propagate;
* ``Fallback(hook=fn)`` — ``fn(error, args, kwargs)`` sees the failed call's arguments too and may return
  :data:`NO_FALLBACK` to let the error propagate. This is the hook a cache uses to serve stale data: it
  looks up the key from the arguments and answers with the stale entry if it still has one.

Only errors that are instances of ``on`` (default ``Exception``) and satisfy ``on_if`` (when given) fall
back; cancellation and other ``BaseException`` never do. Counted in
``buttress_fallback_calls_total{name,kind}`` with kind ``fallback`` (an answer was substituted) or
``propagated`` (a failure passed through).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from buttress.errors import ConfigError, ConfigProblem
from buttress.resilience._forward import build
from buttress.resilience._util import check_callable, check_exception_types, check_name, is_async_callable
from buttress.resilience.policy import Policy
from buttress.telemetry.registry import REGISTRY, Registry

__all__ = ["NO_FALLBACK", "Fallback"]


class _NoFallback:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_FALLBACK"


#: Returned by a ``hook`` (or a mapping callable) to let the original error propagate.
NO_FALLBACK: Final = _NoFallback()

_UNSET: Any = object()


class Fallback(Policy):
    """Substitutes an answer for a failed call (see the module docstring).

    Args:
        value: the answer, when fixed.
        handler: computes the answer from the error.
        mapping: answers per exception class.
        hook: computes the answer from the error and the call's arguments, or returns :data:`NO_FALLBACK`.
        on: exception classes that fall back (default ``Exception``).
        on_if: a predicate that must also hold.
        name: labels metrics.
        registry: where metrics go.

    Raises:
        ConfigError: when not exactly one of ``value``, ``handler``, ``mapping``, ``hook`` is given.
    """

    def __init__(
        self,
        value: Any = _UNSET,
        *,
        handler: Callable[[BaseException], Any] | None = None,
        mapping: Mapping[type[BaseException], Any] | None = None,
        hook: Callable[[BaseException, tuple[Any, ...], dict[str, Any]], Any] | None = None,
        on: type[BaseException] | Iterable[type[BaseException]] = Exception,
        on_if: Callable[[BaseException], bool] | None = None,
        name: str = "default",
        registry: Registry = REGISTRY,
    ) -> None:
        super().__init__()
        self.name = check_name("Fallback", name)
        given = [
            k
            for k, v in (
                ("value", value is not _UNSET),
                ("handler", handler),
                ("mapping", mapping),
                ("hook", hook),
            )
            if v is not None and v is not False
        ]
        if len(given) != 1:
            raise ConfigError(
                [
                    ConfigProblem(
                        "Fallback",
                        "give exactly one of value, handler=, mapping= or hook= to say what to answer with",
                        given,
                    )
                ]
            )
        check_callable("Fallback", "handler", handler)
        check_callable("Fallback", "hook", hook)
        if mapping is not None:
            check_exception_types("Fallback", "mapping", list(mapping))
        self._value = value
        self._handler = handler
        self._mapping = dict(mapping) if mapping is not None else None
        self._hook = hook
        self._on = check_exception_types("Fallback", "on", on) or (Exception,)
        self._on_if = check_callable("Fallback", "on_if", on_if)
        help_text = "Failed calls that a fallback answered, or let through."
        labels = {"name": self.name}
        self._used = registry.counter("buttress_fallback_calls", help_text, {**labels, "kind": "fallback"})
        self._passed = registry.counter(
            "buttress_fallback_calls", help_text, {**labels, "kind": "propagated"}
        )
        # Whether the answer function is a coroutine function, decided once.
        self._answer_is_async = is_async_callable(handler) or is_async_callable(hook)

    def __repr__(self) -> str:
        return f"Fallback(name={self.name!r})"

    def handles(self, error: BaseException) -> bool:
        """Whether ``error`` is one this fallback answers for."""
        if not isinstance(error, Exception) or not isinstance(error, self._on):
            return False
        return self._on_if is None or bool(self._on_if(error))

    def _answer(self, error: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The substitute (possibly an awaitable from an async handler), or :data:`NO_FALLBACK`."""
        if self._value is not _UNSET:
            return self._value
        if self._handler is not None:
            return self._handler(error)
        if self._hook is not None:
            return self._hook(error, args, kwargs)
        assert self._mapping is not None
        for cls in type(error).__mro__:
            if cls in self._mapping:
                answer = self._mapping[cls]
                return answer(error) if callable(answer) else answer
        return NO_FALLBACK

    def _namespace(self, fn: Callable[..., Any]) -> dict[str, Any]:
        return {
            "fn": fn,
            "handles": self.handles,
            "answer": self._answer,
            "NO_FALLBACK": NO_FALLBACK,
            "used": self._used,
            "passed": self._passed,
            "isawaitable": inspect.isawaitable,
        }

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The sync wrapper: a plain ``try``; the answer is computed only after a failure."""
        if self._answer_is_async:
            raise TypeError(
                f"Fallback {self.name!r} has an async handler, so it can only guard async functions; "
                f"{getattr(fn, '__qualname__', fn)!r} is sync."
            )
        return build(_FALLBACK_SYNC, fn, self._namespace(fn), "fallback_call")

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The async wrapper; an async handler or hook is awaited."""
        return build(_FALLBACK_ASYNC, fn, self._namespace(fn), "fallback_call")


_FALLBACK_SYNC = """
def fallback_call({params}):
    try:
        return fn({call})
    except Exception as exc:
        if handles(exc):
            result = answer(exc, {args}, {kwargs})
            if result is not NO_FALLBACK:
                used.value += 1
                return result
        passed.value += 1
        raise
"""

_FALLBACK_ASYNC = """
async def fallback_call({params}):
    try:
        return await fn({call})
    except Exception as exc:
        if handles(exc):
            result = answer(exc, {args}, {kwargs})
            if isawaitable(result):
                result = await result
            if result is not NO_FALLBACK:
                used.value += 1
                return result
        passed.value += 1
        raise
"""
