"""The ``[resilience]`` configuration section: named policies built by ``buttress.policy(name)``.

::

    [resilience.policies.email]
    timeout = "30s"                                 # or { duration = "30s", sync = "deadline" }
    retry = { attempts = 3, backoff = "exponential", base = "1s", factor = 2, max = "10s", jitter = "full" }
    breaker = { window = "count:50", failure_rate = 0.6, wait_open = "10s", half_open_calls = 5 }
    bulkhead = { max_concurrent = 50, max_wait = "100ms" }
    rate_limit = { rate = 100, period = "1s" }
    http = { connect = "5s", read = "10s" }         # for the HTTP client; see Pipeline.http
    dead_letter = "sqlite:.buttress/dlq.db"         # or "redis://host:6379/0"
    order = ["timeout", "retry", "breaker", "rate_limit", "bulkhead"]

Each policy table is optional (absent means "not used") and every key in it has a default, so
``retry = {}`` is a retry with the defaults. A scalar stands for the table's main key: ``timeout = "2s"``,
``retry = 5`` (attempts), ``breaker = "count:50"`` (window), ``bulkhead = 50`` (max_concurrent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from buttress.config import (
    Boolean,
    Choice,
    Custom,
    Duration,
    Integer,
    ListOf,
    MapOf,
    Number,
    Table,
)
from buttress.errors import ConfigError
from buttress.resilience.backoff import BACKOFFS, JITTERS
from buttress.resilience.timeout import SYNC_MODES

if TYPE_CHECKING:
    from buttress.config import Problems

__all__ = ["DEFAULT_ORDER", "ORDERABLE", "POLICY", "SCHEMA", "check_store_url"]

#: The policies ``order`` may name.
ORDERABLE = ("timeout", "retry", "breaker", "rate_limit", "bulkhead")
#: Outermost first, as in the design: a timeout bounds everything, the bulkhead is innermost.
DEFAULT_ORDER = list(ORDERABLE)


def _ratio(default: float | None = None, doc: str = "") -> Number:
    """A threshold in (0, 1]."""
    if default is None:
        return Number(minimum=0.0, maximum=1.0, minimum_exclusive=True, doc=doc)
    return Number(default=default, minimum=0.0, maximum=1.0, minimum_exclusive=True, doc=doc)


def _window(value: Any) -> Any:
    from buttress.resilience.circuit import _parse_window

    try:
        _parse_window(value)
    except ConfigError as exc:
        raise ValueError(exc.problems[0].message) from None
    return value


def check_store_url(value: Any) -> str:
    """A dead-letter store address: ``sqlite:PATH``, ``redis://…``, ``rediss://…`` or ``unix://…``."""
    if not isinstance(value, str) or not value:
        raise ValueError('expected a store such as "sqlite:.buttress/dlq.db" or "redis://localhost:6379/0"')
    scheme = value.split(":", 1)[0].lower()
    if scheme not in ("sqlite", "redis", "rediss", "unix") or value.lower() in ("sqlite:", "redis:"):
        raise ValueError('expected "sqlite:PATH" or a redis:// URL, e.g. "sqlite:.buttress/dlq.db"')
    return value


def _order(value: dict[str, Any], path: str, problems: Problems) -> None:
    order = value.get("order") or []
    if len(set(order)) != len(order):
        problems.add(f"{path}.order", "names a policy twice", order)


TIMEOUT = Table(
    fields={
        "duration": Duration(required=True, positive=True, doc="the limit"),
        "sync": Choice(choices=SYNC_MODES, default="thread", doc="how sync calls are bounded"),
    },
    shorthand="duration",
)

RETRY = Table(
    fields={
        "attempts": Integer(default=3, minimum=1, doc="attempts in all, the first included"),
        "backoff": Choice(choices=BACKOFFS, default="exponential"),
        "base": Duration(default=1.0, doc="first delay"),
        "factor": Number(default=2.0, minimum=1.0),
        "max": Duration(default=10.0, doc="longest single delay"),
        "jitter": Choice(choices=JITTERS, default="full"),
        "max_time": Duration(doc="time spent retrying, from the first failure"),
        "budget": _ratio(doc="retries as a ratio of calls, e.g. 0.1"),
        "budget_burst": Number(default=10.0, minimum=1.0),
        "throttle_k": Number(minimum=1.0, doc="adaptive client-side throttling multiplier, e.g. 2"),
    },
    shorthand="attempts",
)

BREAKER = Table(
    fields={
        "window": Custom(check=_window, default="count:100", doc='"count:N" or "time:60s"'),
        "failure_rate": _ratio(0.5),
        "slow_call_rate": _ratio(1.0),
        "slow_call_duration": Duration(positive=True),
        "minimum_calls": Integer(default=100, minimum=1),
        "wait_open": Duration(default=60.0),
        "wait_open_factor": Number(default=1.0, minimum=1.0, doc="growth per consecutive opening"),
        "wait_open_max": Duration(positive=True),
        "half_open_calls": Integer(default=10, minimum=1),
        "max_wait_half_open": Duration(positive=True),
        "automatic_half_open": Boolean(default=False),
    },
    shorthand="window",
)

BULKHEAD = Table(
    fields={
        "max_concurrent": Integer(default=25, minimum=1),
        "max_wait": Duration(default=0.0),
    },
    shorthand="max_concurrent",
)

RATE_LIMIT = Table(
    fields={
        "rate": Number(required=True, minimum=0.0, minimum_exclusive=True, doc="permits per period"),
        "period": Duration(default=1.0, positive=True),
        "burst": Number(minimum=1.0),
        "max_wait": Duration(default=0.0),
    },
    shorthand="rate",
)

HTTP = Table(
    fields={
        "connect": Duration(positive=True),
        "read": Duration(positive=True),
        "write": Duration(positive=True),
        "pool": Duration(positive=True),
    }
)

#: One ``[resilience.policies.<name>]`` entry.
POLICY = Table(
    fields={
        "timeout": TIMEOUT,
        "retry": RETRY,
        "breaker": BREAKER,
        "bulkhead": BULKHEAD,
        "rate_limit": RATE_LIMIT,
        "http": HTTP,
        "dead_letter": Custom(check=check_store_url, doc='"sqlite:PATH" or "redis://…"'),
        "order": ListOf(item=Choice(choices=ORDERABLE), default=lambda: list(DEFAULT_ORDER)),
    },
    check=_order,
)

#: ``[resilience]``.
SCHEMA = Table(
    fields={
        "policies": MapOf(value=POLICY, default=dict),
        "dead_letter": Custom(
            check=check_store_url,
            default="sqlite:.buttress/dlq.db",
            doc="the store `buttress dlq` uses when --store is not given",
        ),
    }
)
