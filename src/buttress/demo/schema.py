"""The ``[demo]`` configuration section: the provider policies of the reference platform.

::

    [demo.policies.email]
    timeout = "10s"
    retry = { attempts = 3, base = "1s", factor = 2, max = "10s", jitter = "full" }
    breaker = { window = 50, failure_rate = 0.6, minimum_calls = 10, wait_open = "10s", half_open_calls = 5 }
    bulkhead = { max_concurrent = 50, max_wait = "100ms" }

These are the values issue 3 asks an event platform to ship with (retry 3 attempts from 1 s, ×2, at most
10 s; breaker at 60 % failures over 50 calls, 10 s open, 5 calls half-open; bulkhead 50 concurrent,
100 ms wait; provider timeouts 5 s connect, 10 s read). They live here, with the same keys as
``[resilience.policies.<name>]``, because ``buttress.resilience`` had no configuration schema or pipeline
yet when the demo was wired; see docs/demo.md.
"""

from __future__ import annotations

from buttress.config import Choice, Duration, Integer, MapOf, Number, Table

__all__ = ["POLICY", "SCHEMA"]

_RETRY = Table(
    fields={
        "attempts": Integer(default=3, minimum=1, maximum=20),
        "base": Duration(default=1.0),
        "factor": Number(default=2.0, minimum=1.0),
        "max": Duration(default=10.0),
        "jitter": Choice(choices=("none", "full", "equal", "decorrelated"), default="full"),
    }
)
_BREAKER = Table(
    fields={
        "window": Integer(default=50, minimum=1),
        "failure_rate": Number(default=0.6, minimum=0.0, maximum=1.0, minimum_exclusive=True),
        "minimum_calls": Integer(default=10, minimum=1),
        "wait_open": Duration(default=10.0, positive=True),
        "half_open_calls": Integer(default=5, minimum=1),
    }
)

_BULKHEAD = Table(
    fields={
        "max_concurrent": Integer(default=50, minimum=1),
        "max_wait": Duration(default=0.1),
    }
)

#: One ``[demo.policies.<provider>]`` table.
POLICY = Table(
    fields={
        "connect_timeout": Duration(default=5.0, positive=True),
        "timeout": Duration(default=10.0, positive=True, doc="read timeout of one call"),
        "retry": _RETRY,
        "breaker": _BREAKER,
        "bulkhead": _BULKHEAD,
    }
)

#: ``[demo]``.
SCHEMA = Table(fields={"policies": MapOf(value=POLICY, default=dict)})
