"""The ``[[slo]]`` configuration section: a list of service level objectives.

::

    [[slo]]
    name = "public-pages-latency"
    sli = "latency"                  # availability | latency | error_rate
    threshold = "100ms"              # latency only: a request is good when it took at most this long
    objective = 0.99                 # or percentile = 99 for "P99 < 100ms"
    window = "30d"                   # rolling window, or "month" for the calendar month
    routes = ["GET /api/v1/events*", "GET /api/v1/speakers*"]

Every problem is reported with its dotted path (``slo[0].objective``); cross-field rules (a latency SLO needs
a threshold, the window must be at least as long as the longest alert window) are checked here too, so a
bad file fails when it is loaded, not when the first alert should have fired.
"""

from __future__ import annotations

from typing import Any

from buttress.config import (
    Choice,
    Custom,
    Duration,
    Integer,
    ListOf,
    MapOf,
    Number,
    String,
    Table,
    parse_duration,
)
from buttress.slo.routes import RouteSelector

__all__ = ["DEFAULT_ALERTS", "SCHEMA", "parse_objective", "parse_window"]

#: Sloth's and the SRE workbook's multiwindow, multi-burn-rate alerts, as configuration.
DEFAULT_ALERTS: list[dict[str, Any]] = [
    {"severity": "page", "long": 3600.0, "short": 300.0, "burn_rate": 14.4},
    {"severity": "page", "long": 21600.0, "short": 1800.0, "burn_rate": 6.0},
    {"severity": "ticket", "long": 86400.0, "short": 7200.0, "burn_rate": 3.0},
    {"severity": "ticket", "long": 259200.0, "short": 21600.0, "burn_rate": 1.0},
]

SLI_KINDS = ("availability", "latency", "error_rate")


def parse_objective(value: Any) -> float:
    """A fraction in (0, 1): ``0.999`` for 99.9 %. Rejects 1 and above with the reason."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a fraction such as 0.999 (for 99.9 %)")
    v = float(value)
    if 1.0 < v < 100.0:
        raise ValueError(f"must be a fraction below 1; write {v / 100:g} for {v:g} %")
    if v >= 1.0:
        raise ValueError("must be below 1: an objective of 100 % leaves no error budget (write e.g. 0.999)")
    if not v > 0.0:
        raise ValueError("must be above 0, e.g. 0.99")
    return v


def parse_window(value: Any) -> float | str:
    """A rolling window as a duration (``"30d"``) or ``"month"`` for the calendar month."""
    if isinstance(value, str) and value.strip().lower() in (
        "month",
        "calendar-month",
        "calendar_month",
        "1mo",
    ):
        return "month"
    seconds = parse_duration(value)
    if seconds < 60:
        raise ValueError('must be at least one minute; SLO windows are usually "28d", "30d" or "month"')
    if seconds % 60:
        raise ValueError("must be a whole number of minutes (history is kept per minute)")
    return seconds


def _selector(value: Any) -> str:
    RouteSelector.parse(value)  # raises ValueError with the reason
    return str(value)


def _check_alert(out: dict[str, Any], path: str, problems: Any) -> None:
    if out["short"] >= out["long"]:
        problems.add(f"{path}.short", f"must be shorter than long ({out['long']:g} s)", out["short"])


ALERT = Table(
    fields={
        "severity": Choice(choices=("page", "ticket"), required=True),
        "long": Duration(required=True, positive=True, doc="the long window, e.g. 1h"),
        "short": Duration(required=True, positive=True, doc="the short window, e.g. 5m"),
        "burn_rate": Number(required=True, minimum=0.0, minimum_exclusive=True, doc="e.g. 14.4"),
    },
    check=_check_alert,
)


#: Fields only one SLI kind may have: (field, that kind, the message when another kind has it).
_KIND_ONLY_FIELDS = (
    ("percentile", "latency", "only a latency SLO has a percentile"),
    ("max_error_rate", "error_rate", "only an error_rate SLO has max_error_rate"),
)
_OBJECTIVE_FIELDS = ("objective", "percentile", "max_error_rate")


def _check_slo(out: dict[str, Any], path: str, problems: Any) -> None:
    _check_objective_given(out, path, problems)
    _check_kind_fields(out, path, problems)
    _check_threshold(out, path, problems)
    _check_window(out, path, problems)


def _check_objective_given(out: dict[str, Any], path: str, problems: Any) -> None:
    """Exactly one way of writing the objective."""
    given = [k for k in _OBJECTIVE_FIELDS if out.get(k) is not None]
    if len(given) > 1:
        problems.add(path, f"give only one of objective, percentile, max_error_rate (got {', '.join(given)})")
    elif not given:
        problems.add(f"{path}.objective", "is required (e.g. 0.999), or percentile / max_error_rate")


def _check_kind_fields(out: dict[str, Any], path: str, problems: Any) -> None:
    for name, kind, message in _KIND_ONLY_FIELDS:
        if out.get(name) is not None and out["sli"] != kind:
            problems.add(f"{path}.{name}", message, out[name])


def _check_threshold(out: dict[str, Any], path: str, problems: Any) -> None:
    """A latency SLO has a threshold, and only a latency SLO."""
    kind, threshold = out["sli"], out.get("threshold")
    if kind == "latency" and threshold is None:
        problems.add(f"{path}.threshold", 'a latency SLO needs a threshold, e.g. threshold = "100ms"')
    elif kind != "latency" and threshold is not None:
        problems.add(f"{path}.threshold", f"only a latency SLO has a threshold, not {kind}", threshold)


def _check_window(out: dict[str, Any], path: str, problems: Any) -> None:
    """The window holds the longest alert window (a calendar month counts as its shortest, 28 days)."""
    window = out["window"]
    longest = max((a["long"] for a in out["alerts"]), default=0.0)
    seconds = 28 * 86400.0 if window == "month" else window
    if seconds < longest:
        problems.add(
            f"{path}.window",
            f"is shorter than the longest alert window ({longest / 3600:g} h); "
            "lengthen the window or shorten the alerts",
            window,
        )


SLO = Table(
    fields={
        "name": String(required=True, pattern=r"[A-Za-z0-9][A-Za-z0-9_.\-]*", doc="unique"),
        "description": String(default="", allow_empty=True),
        "service": String(default="default", pattern=r"[A-Za-z0-9][A-Za-z0-9_.\-]*"),
        "sli": Choice(choices=SLI_KINDS, required=True),
        "objective": Custom(check=parse_objective),
        "percentile": Number(minimum=0.0, maximum=100.0, minimum_exclusive=True, maximum_exclusive=True),
        "max_error_rate": Number(minimum=0.0, maximum=1.0, minimum_exclusive=True, maximum_exclusive=True),
        "threshold": Duration(positive=True, doc="latency SLOs: the good/slow boundary"),
        "window": Custom(check=parse_window, default=30 * 86400.0, doc='"30d" rolling, or "month"'),
        "routes": ListOf(item=Custom(check=_selector), min_items=1, default=lambda: ["*"]),
        "error_statuses": ListOf(item=Choice(choices=("4xx", "5xx")), min_items=1, default=lambda: ["5xx"]),
        "min_traffic": Integer(minimum=0, default=10, doc="requests needed in the long window to alert"),
        "alerts": ListOf(item=ALERT, default=lambda: [dict(a) for a in DEFAULT_ALERTS]),
        "labels": MapOf(value=String(allow_empty=True), default=dict),
    },
    check=_check_slo,
)

#: ``[[slo]]``: a list of SLO tables.
SCHEMA = ListOf(item=SLO, default=list)
