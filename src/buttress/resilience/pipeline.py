"""Pipeline: policies composed in an explicit order, outermost first.

::

    email = Pipeline(Timeout(30), Retry("email"), CircuitBreaker("email"), Bulkhead("email"))

    @email
    async def send(message: Message) -> Receipt: ...            # a decorator keeps the signature for mypy

    receipt = email.call(send_sync, message)                    # a one-off call
    receipt = await email.acall(send, message)                  # the same, async
    with email:                                                 # a guarded block
        ...

The first policy is the outermost: above, the timeout bounds the whole call including every retry, each
retry passes the breaker, and only calls the breaker admits take a bulkhead slot. Another common order
puts a per-attempt timeout inside the retry: ``Pipeline(Retry(...), CircuitBreaker(...), Timeout(2))``.
The pipeline builds each wrapper once, when it decorates, by wrapping the function in the innermost
policy first; a call then runs straight through the policies' own fast paths.

In a ``with`` block the policies that can guard a block do (breaker, bulkhead, rate limiter, timeout —
see :class:`~buttress.resilience.Policy`); retry and fallback cannot re-run or replace a block and let it
pass. The error a policy raises while leaving the block (a sync timeout's overrun) is what the policies
outside it see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from buttress.resilience._util import check_name
from buttress.resilience.policy import Policy

__all__ = ["Pipeline"]

PolicyT = TypeVar("PolicyT", bound=Policy)


class Pipeline(Policy):
    """Policies applied in order, outermost first, as one policy.

    Args:
        *policies: the policies, outermost first (a pipeline may contain pipelines).
        name: names the pipeline (``buttress.policy("email")`` names it after the configuration entry).

    Raises:
        TypeError: when something other than a policy is given.
    """

    def __init__(self, *policies: Policy, name: str = "pipeline") -> None:
        super().__init__()
        for index, item in enumerate(policies):
            if not isinstance(item, Policy):
                raise TypeError(
                    f"Pipeline takes resilience policies (CircuitBreaker, Retry, Timeout, ...); "
                    f"argument {index} is {item!r}."
                )
        self.name = check_name("Pipeline", name)
        self.policies: tuple[Policy, ...] = policies

    def __repr__(self) -> str:
        inner = ", ".join(repr(p) for p in self.policies)
        return f"Pipeline({inner}, name={self.name!r})"

    def __iter__(self) -> Any:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def find(self, kind: type[PolicyT]) -> PolicyT | None:
        """The outermost policy of type ``kind`` (searching nested pipelines), or ``None``."""
        for item in self.policies:
            if isinstance(item, kind):
                return item
            if isinstance(item, Pipeline):
                found = item.find(kind)
                if found is not None:
                    return found
        return None

    def wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped by each policy, innermost first."""
        wrapped = fn
        for item in reversed(self.policies):
            wrapped = item.wrap_sync(wrapped)
        return wrapped

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The coroutine function ``fn`` wrapped by each policy, innermost first."""
        wrapped = fn
        for item in reversed(self.policies):
            wrapped = item.wrap_async(wrapped)
        return wrapped

    # -- blocks --------------------------------------------------------------------------------------

    def _enter(self) -> Any:
        tokens: list[Any] = []
        for item in self.policies:
            try:
                tokens.append(item._enter())
            except BaseException as exc:
                self._unwind(tokens, exc)
                raise
        return tokens

    def _unwind(self, tokens: list[Any], error: BaseException | None) -> BaseException | None:
        """Leave the entered policies innermost first; returns the error the outermost one saw."""
        for item, token in zip(reversed(self.policies[: len(tokens)]), reversed(tokens), strict=True):
            try:
                item._exit(token, error)
            except BaseException as exc:
                error = exc
        return error

    def _exit(self, token: Any, error: BaseException | None) -> None:
        final = self._unwind(token, error)
        if final is not error and final is not None:
            raise final

    async def _aenter(self) -> Any:
        tokens: list[Any] = []
        for item in self.policies:
            try:
                tokens.append(await item._aenter())
            except BaseException as exc:
                await self._aunwind(tokens, exc)
                raise
        return tokens

    async def _aunwind(self, tokens: list[Any], error: BaseException | None) -> BaseException | None:
        for item, token in zip(reversed(self.policies[: len(tokens)]), reversed(tokens), strict=True):
            try:
                await item._aexit(token, error)
            except BaseException as exc:
                error = exc
        return error

    async def _aexit(self, token: Any, error: BaseException | None) -> None:
        final = await self._aunwind(token, error)
        if final is not error and final is not None:
            raise final
