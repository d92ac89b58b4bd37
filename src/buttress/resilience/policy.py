"""The base every resilience policy shares: one object that decorates sync or async functions.

A policy builds a wrapper once, when it decorates, choosing the sync or the async face by looking at the
function then, never on each call. The same object also runs a one-off call (:meth:`Policy.call`,
:meth:`Policy.acall`) and guards a block of code (``with policy:`` / ``async with policy:``) where the
policy can apply to a block: a circuit breaker records the block's outcome, a bulkhead holds a slot for it,
a timeout bounds it. A block cannot be re-run or replaced, so retry and fallback let blocks pass through
unchanged (use :meth:`Retry.attempts` to retry a block).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from buttress.resilience._util import is_async_callable

__all__ = ["Policy"]

P = ParamSpec("P")
T = TypeVar("T")

_CALL_CACHE_SIZE = 512


class Policy:
    """A resilience policy: decorator, one-off caller and block guard over one set of wrappers.

    Subclasses implement :meth:`wrap_sync` and :meth:`wrap_async`, and, when they can guard a block,
    :meth:`_enter` / :meth:`_exit` (and the async pair). Configuration is resolved in the subclass's
    constructor; wrappers read only precomputed values.

    Attributes:
        name: the policy's name, used as the ``name`` label of its metrics and events.
    """

    name: str

    def __init__(self) -> None:
        self._call_cache: dict[tuple[Callable[..., Any], bool], Callable[..., Any]] = {}
        self._blocks: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
            f"buttress-{type(self).__name__}-{id(self):x}", default=()
        )

    # -- faces ---------------------------------------------------------------------------------------

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Return a wrapper that applies this policy to each call of the sync function ``fn``."""
        raise NotImplementedError

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """Return a coroutine function that applies this policy to each call of the async ``fn``."""
        raise NotImplementedError

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``fn`` (sync or async); the wrapper keeps its signature, name and docstring."""
        if not callable(fn):
            raise TypeError(f"{type(self).__name__} decorates functions; got {fn!r}, which is not callable.")
        wrapped = self.wrap_async(fn) if is_async_callable(fn) else self.wrap_sync(fn)  # type: ignore[arg-type]
        functools.update_wrapper(wrapped, fn)
        # Lets tools (`buttress dlq replay --handler`) find the undecorated function behind policies.
        setattr(wrapped, "__buttress_policy__", self)  # noqa: B010 - a dunder mypy cannot know
        return cast(Callable[P, T], wrapped)

    def _wrapper_for(self, fn: Callable[..., Any], asynchronous: bool) -> Callable[..., Any]:
        cache = self._call_cache
        key = (fn, asynchronous)
        wrapper = cache.get(key)
        if wrapper is None:
            if len(cache) >= _CALL_CACHE_SIZE:
                cache.clear()  # a bounded cache: callers passing fresh lambdas must not grow memory
            wrapper = self.wrap_async(fn) if asynchronous else self.wrap_sync(fn)
            cache[key] = wrapper
        return wrapper

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the sync function ``fn(*args, **kwargs)`` under this policy.

        The wrapper for ``fn`` is built on first use and kept (up to 512 functions), so repeated calls
        cost what a decorated call costs.

        Raises:
            TypeError: when ``fn`` is async; use ``await policy.acall(fn, ...)``.
        """
        if is_async_callable(fn):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is async: "
                "use `await policy.acall(fn, ...)` instead of call()."
            )
        return cast(T, self._wrapper_for(fn, False)(*args, **kwargs))

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await the async function ``fn(*args, **kwargs)`` under this policy.

        Raises:
            TypeError: when ``fn`` is not async; use ``policy.call(fn, ...)``.
        """
        if not is_async_callable(fn):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not async: "
                "use `policy.call(fn, ...)` instead of acall()."
            )
        return cast(T, await self._wrapper_for(fn, True)(*args, **kwargs))

    # -- blocks --------------------------------------------------------------------------------------

    def _enter(self) -> Any:
        """Admit a block; the returned token is handed to :meth:`_exit`. Default: nothing to do."""
        return None

    def _exit(self, token: Any, error: BaseException | None) -> None:
        """Finish a block admitted by :meth:`_enter`."""

    async def _aenter(self) -> Any:
        """Admit a block in a coroutine (default: :meth:`_enter`)."""
        return self._enter()

    async def _aexit(self, token: Any, error: BaseException | None) -> None:
        """Finish a block in a coroutine (default: :meth:`_exit`)."""
        self._exit(token, error)

    def _push(self, token: Any) -> None:
        self._blocks.set((*self._blocks.get(), token))

    def _pop(self) -> Any:
        stack = self._blocks.get()
        if not stack:
            raise RuntimeError(f"{type(self).__name__}.__exit__ without a matching __enter__.")
        self._blocks.set(stack[:-1])
        return stack[-1]

    def __enter__(self) -> None:
        self._push(self._enter())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit(self._pop(), exc)

    async def __aenter__(self) -> None:
        self._push(await self._aenter())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._aexit(self._pop(), exc)
