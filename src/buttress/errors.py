"""The exceptions buttress raises, all under one root so callers can catch what they mean.

::

    ButtressError
    ├── ConfigError            bad buttress.toml, spec file, or constructor arguments; lists every problem
    ├── ResilienceError        a policy refused or gave up on a call
    │   ├── CircuitOpenError   (buttress.resilience) carries .name and .retry_after
    │   ├── BulkheadFullError  (buttress.resilience)
    │   ├── RateLimitedError   (buttress.resilience)
    │   ├── RetryExhaustedError (buttress.resilience)
    │   └── TimeoutExceededError (buttress.resilience) also a builtin TimeoutError
    ├── CacheError             a cache could not do what was asked (never raised for a backend outage)
    ├── StoreError             durable state (dead letters, journals, history) is unreadable or corrupt
    └── MeasureError           a quality or SLO measure could not be taken (exit code 2 in the CLI)

Specific exceptions live beside the part that raises them and subclass the category here. Messages are
whole sentences that say what was wrong and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ButtressError",
    "CacheError",
    "ConfigError",
    "ConfigProblem",
    "MeasureError",
    "ResilienceError",
    "StoreError",
]


class ButtressError(Exception):
    """The root of every exception buttress raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration: where, what is wrong, and the value given.

    ``path`` is dotted (``resilience.policies.email.retry.attempts``); ``value`` is what was given, or
    :data:`MISSING` when the problem is an absent key.
    """

    path: str
    message: str
    value: Any = None
    has_value: bool = True

    def __str__(self) -> str:
        where = self.path or "<root>"
        if self.has_value:
            return f"{where}: {self.message} (got {_show(self.value)})"
        return f"{where}: {self.message}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ConfigError(ButtressError, ValueError):
    """Configuration that cannot be used, with every problem found listed at once.

    Attributes:
        problems: each problem with its dotted path, message and the value given.
        source: the file the configuration came from, when there was one.
    """

    def __init__(self, problems: list[ConfigProblem] | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("", problems, has_value=False)]
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} in configuration"
        if self.source:
            head += f" {self.source}"
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class ResilienceError(ButtressError):
    """A resilience policy refused a call or gave up on it."""


class CacheError(ButtressError):
    """A cache operation could not be done (bad key, unserialisable value). Backend outages never raise."""


class StoreError(ButtressError):
    """Durable state (dead letters, write-behind journal, history) is unreadable or corrupt."""


class MeasureError(ButtressError):
    """A measure (coverage, security audit, SLO data) could not be taken."""
