"""The ``[cache]`` configuration section: the backend and one table per namespace.

::

    [cache]
    backend = "redis://localhost:6379/0"   # or "memory", "redis+cluster://…", "redis+sentinel://host:26379/mymaster"
    events_bus = "redis"                   # where domain events travel: "local" (in-process) or "redis"

    [cache.namespaces.events]
    ttl = "15m"
    ttl_strategy = "adaptive"              # fixed | jittered | adaptive
    p_stale = 0.05                         # adaptive: accepted probability that a read is stale
    ttl_min = "1m"
    ttl_max = "1h"
    max_entries = 10000
    tiered = true                          # memory L1 in front of the Redis backend
    serve_stale = "10m"                    # serve an expired value this long when the backend/loader fails
    invalidate_on = { "event.updated" = ["event:{code}", "tag:events-list"] }
    warmers = ["app.cache_warmers:upcoming_events"]   # run by `buttress cache warm events`
"""

from __future__ import annotations

import re
from typing import Any

from buttress.config import (
    Boolean,
    Choice,
    Custom,
    Duration,
    Integer,
    ListOf,
    MapOf,
    Number,
    Problems,
    Size,
    String,
    Table,
)

__all__ = ["NAMESPACE", "SCHEMA"]

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_BACKEND_HINT = '"memory" or a URL such as "redis://host:6379/0", "redis+cluster://host:7000"'


def _backend(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected {_BACKEND_HINT}")
    if value == "memory":
        return value
    scheme = value.partition("://")[0]
    if scheme not in ("redis", "rediss", "unix", "redis+cluster", "redis+sentinel"):
        raise ValueError(f"unknown backend scheme {scheme!r}; expected {_BACKEND_HINT}")
    return value


def _mapping(value: Any) -> dict[str, list[str]]:
    """``{"event.updated": ["event:{code}", "tag:events-list"]}``: domain event -> keys and tags."""
    if not isinstance(value, dict):
        raise ValueError('expected a table such as { "event.updated" = ["event:{code}", "tag:events"] }')
    out: dict[str, list[str]] = {}
    for event, targets in value.items():
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(
                f"event {event!r} must map to a non-empty list of key templates or 'tag:<name>' strings"
            )
        out[str(event)] = list(targets)
    return out


def _warmer(value: Any) -> str:
    """``"package.module:function"``: a function with no arguments returning ``{key: value}`` or pairs."""
    module, sep, attr = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not sep or _DOTTED.fullmatch(module) is None or _DOTTED.fullmatch(attr) is None:
        raise ValueError('expected "package.module:function" naming a warmer function')
    return str(value)


def _check_namespace(values: dict[str, Any], path: str, problems: Problems) -> None:
    lo, hi = values.get("ttl_min"), values.get("ttl_max")
    if lo is not None and hi is not None and lo > hi:
        problems.add(f"{path}.ttl_min", f"must not exceed ttl_max ({hi:g}s)", lo)
    if values.get("ttl_strategy") == "adaptive" and values.get("p_stale") is None:
        values["p_stale"] = 0.05


#: One ``[cache.namespaces.<name>]`` table.
NAMESPACE = Table(
    fields={
        "ttl": Duration(
            default=300.0, positive=True, doc="time to live of an entry (the base for strategies)"
        ),
        "ttl_strategy": Choice(choices=("fixed", "jittered", "adaptive"), default="fixed"),
        "jitter": Number(default=0.1, minimum=0.0, maximum=1.0, doc="jittered: ± fraction of ttl"),
        "ttl_min": Duration(default=None, doc="adaptive: lower clamp (default ttl / 10)"),
        "ttl_max": Duration(default=None, doc="adaptive: upper clamp (default ttl × 10)"),
        "p_stale": Number(
            default=None, minimum=0.0, maximum=1.0, minimum_exclusive=True, maximum_exclusive=True
        ),
        "max_entries": Integer(default=10_000, minimum=1),
        "max_bytes": Size(default=None),
        "version": String(default="1", pattern=r"[A-Za-z0-9_.\-]+"),
        "tiered": Boolean(default=None, doc="memory L1 in front of a Redis backend (default: on for Redis)"),
        "l1_ttl": Duration(default=None, doc="tiered: TTL of L1 copies (default: the entry's TTL)"),
        "serve_stale": Duration(default=0.0, doc="serve an expired value this long when reloading fails"),
        "early_recompute": Number(default=0.0, minimum=0.0, doc="XFetch beta; 0 turns it off, 1 is typical"),
        "lease": Duration(default=0.0, doc="distributed lease for loads (Redis); 0 turns it off"),
        "invalidate_on": Custom(check=_mapping, default=dict),
        "backend": Custom(check=_backend, default=None, doc="override [cache].backend for this namespace"),
        "warmers": ListOf(
            item=Custom(check=_warmer), default=list, doc="module:function warmers `buttress cache warm` runs"
        ),
    },
    check=_check_namespace,
)

#: ``[cache]``.
SCHEMA = Table(
    fields={
        "backend": Custom(check=_backend, default="memory"),
        "events_bus": Choice(choices=("local", "redis"), default="local"),
        "key_prefix": String(default="buttress", pattern=r"[A-Za-z0-9_.\-]+"),
        "socket_timeout": Duration(default=1.0, positive=True, doc="Redis read/write timeout"),
        "down_for": Duration(default=1.0, doc="after a Redis error, skip Redis this long before retrying"),
        "namespaces": MapOf(value=NAMESPACE, default=dict),
        "warmers_required": ListOf(item=String(), default=list, doc="warmers whose failure fails start-up"),
    }
)
