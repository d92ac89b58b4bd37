"""SLO specifications: from ``buttress.toml``, from OpenSLO v1 YAML, and from Sloth ``prometheus/v1`` YAML.

An :class:`SLOSpec` is what the engine, the rules generator and the report share. It comes from:

* ``[[slo]]`` tables in ``buttress.toml`` — :func:`from_config`;
* OpenSLO v1 documents (``kind: SLO``, inline ``indicator`` or ``indicatorRef`` to a ``kind: SLI``) —
  :func:`load_openslo`;
* Sloth ``version: prometheus/v1`` files — :func:`load_sloth`.

Imports translate into the same ``[[slo]]`` tables and go through the same checks, so an imported objective
of 1, a window shorter than the alerts, or a query buttress cannot map get the same precise errors as a bad
``buttress.toml``. :func:`to_toml` writes specs back as ``[[slo]]`` tables to paste into ``buttress.toml``.

Which routes an imported SLO covers is read from the PromQL label matchers on ``route`` (or ``handler``)
and ``method``; the annotation ``buttress.dev/routes: "GET /api/*, POST /x"`` overrides that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from buttress.config import Problems
from buttress.errors import ConfigError, ConfigProblem
from buttress.slo.routes import RouteSelector
from buttress.slo.schema import DEFAULT_ALERTS, SLI_KINDS, SLO

__all__ = [
    "AlertWindow",
    "SLOSpec",
    "from_config",
    "load_file",
    "load_openslo",
    "load_sloth",
    "to_toml",
]

_MINUTE = 60.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class AlertWindow:
    """One multiwindow burn-rate condition: fire when both windows burn faster than ``burn_rate``.

    Attributes:
        severity: ``"page"`` or ``"ticket"``.
        long: the long window in seconds (how much budget has burnt: 1 h at 14.4× is 2 % of 30 days).
        short: the short window in seconds (is it still burning? it makes the alert resolve quickly).
        burn_rate: the multiple of the sustainable error rate, ``(1 - objective)``.
    """

    severity: str
    long: float
    short: float
    burn_rate: float


@dataclass(frozen=True, slots=True)
class SLOSpec:
    """A checked service level objective.

    Attributes:
        name: unique name, used as the ``slo`` label and in alert names.
        sli: ``"availability"`` (good = not an error status), ``"latency"`` (good = at most ``threshold``
            seconds) or ``"error_rate"`` (like availability, written as a maximum error rate).
        objective: the share of good requests promised, in (0, 1).
        window: rolling window in seconds, or ``"month"`` for the calendar month (UTC).
        routes: the selectors of the series that count.
        threshold: latency SLOs only: seconds.
        error_statuses: status classes that are bad for availability and error_rate SLIs.
        min_traffic: requests needed in an alert's long window before it may fire.
        alerts: the burn-rate conditions.
        service, description, labels: passed to alerts, rules and reports.
    """

    name: str
    sli: str
    objective: float
    window: float | str
    routes: tuple[RouteSelector, ...]
    threshold: float | None = None
    error_statuses: frozenset[str] = frozenset({"5xx"})
    min_traffic: int = 10
    alerts: tuple[AlertWindow, ...] = ()
    service: str = "default"
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def error_budget(self) -> float:
        """The share of requests allowed to be bad: ``1 - objective``."""
        return 1.0 - self.objective

    @property
    def window_seconds(self) -> float:
        """The window length; a calendar month counts as 31 days (its longest) for sizing."""
        return 31 * _DAY if self.window == "month" else float(self.window)

    @property
    def window_label(self) -> str:
        """``"30d"``, ``"4w"``… or ``"month"``, for people and for rule names."""
        if self.window == "month":
            return "month"
        return format_duration(float(self.window))

    def selects(self, route: str, method: str) -> bool:
        """Whether requests to ``route`` with ``method`` count toward this SLO."""
        return any(s.matches(route, method) for s in self.routes)

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> SLOSpec:
        """Build from one checked ``[[slo]]`` table (see :data:`buttress.slo.schema.SLO`)."""
        objective = table.get("objective")
        if table.get("percentile") is not None:
            objective = table["percentile"] / 100.0
        elif table.get("max_error_rate") is not None:
            objective = 1.0 - table["max_error_rate"]
        assert objective is not None
        return cls(
            name=table["name"],
            sli=table["sli"],
            objective=float(objective),
            window=table["window"],
            routes=tuple(RouteSelector.parse(r) for r in table["routes"]),
            threshold=table.get("threshold"),
            error_statuses=frozenset(table["error_statuses"]),
            min_traffic=table["min_traffic"],
            alerts=tuple(
                AlertWindow(a["severity"], a["long"], a["short"], a["burn_rate"]) for a in table["alerts"]
            ),
            service=table["service"],
            description=table["description"],
            labels=dict(table["labels"] or {}),
        )


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style duration for ``seconds``: ``5m``, ``1h``, ``3d``, ``4w``."""
    for unit, size in (("w", 7 * _DAY), ("d", _DAY), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


# --------------------------------------------------------------------------------------------------------
# buttress.toml
# --------------------------------------------------------------------------------------------------------


def from_config(
    section: Sequence[Mapping[str, Any]] | None = None, source: str | None = None
) -> list[SLOSpec]:
    """The SLOs of a checked ``slo`` section (default: the process configuration's).

    Raises:
        ConfigError: two SLOs share a name.
    """
    if section is None:
        from buttress.config import current

        section = current().section("slo")
    specs = [SLOSpec.from_table(t) for t in section]
    _check_unique(specs, [f"slo[{i}].name" for i in range(len(specs))], source)
    return specs


def _check_unique(specs: Sequence[SLOSpec], paths: Sequence[str], source: str | None) -> None:
    seen: dict[str, int] = {}
    problems = []
    for i, spec in enumerate(specs):
        if spec.name in seen:
            problems.append(
                ConfigProblem(paths[i], f"duplicate SLO name (also {paths[seen[spec.name]]})", spec.name)
            )
        seen.setdefault(spec.name, i)
    if problems:
        raise ConfigError(problems, source)


def _build(
    raw_tables: Sequence[tuple[str, dict[str, Any]]], problems: Problems, source: str
) -> list[SLOSpec]:
    """Check translated tables with the ``[[slo]]`` schema; raise every problem at once."""
    checked = []
    for path, raw in raw_tables:
        out = SLO.parse(raw, path, problems)
        checked.append((path, out))
    if problems.items:
        raise ConfigError(problems.items, source)
    specs = [SLOSpec.from_table(t) for _, t in checked]
    _check_unique(specs, [f"{p}.name" for p, _ in checked], source)
    return specs


# --------------------------------------------------------------------------------------------------------
# PromQL matchers -> selectors
# --------------------------------------------------------------------------------------------------------

_MATCHER = re.compile(
    r'\b(route|handler|method|status_class|code|status|le)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"'
)
_ROUTES_ANNOTATION = "buttress.dev/routes"
_STATUS_CLASS_OF_DIGIT = {"4": "4xx", "5": "5xx"}


class _Untranslatable(ValueError):
    """A query whose routes buttress cannot turn into selectors; the message says what to do instead."""


def _matchers(query: str) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for label, op, value in _MATCHER.findall(query):
        found.setdefault(label, []).append((op, value.replace("\\\\", "\\")))
    return found


def _positive(matchers: Iterable[tuple[str, str]]) -> list[str]:
    """The values of the matchers that select (``=`` and ``=~``); ``!=`` and ``!~`` are left out."""
    return [value for op, value in matchers if op in ("=", "=~")]


def _regex_to_globs(regex: str) -> list[str] | None:
    """Turn a simple route regex into globs (``/a/.*|/b`` -> ``/a/*``, ``/b``); None when not simple."""
    alternatives = _expand_groups(regex.strip())
    if alternatives is None:
        return None
    out = []
    for alt in alternatives:
        glob, i = [], 0
        while i < len(alt):
            if alt.startswith(".*", i) or alt.startswith(".+", i):
                glob.append("*")
                i += 2
            elif alt[i] == "\\" and i + 1 < len(alt):
                glob.append(alt[i + 1])
                i += 2
            elif alt[i] == ".":
                glob.append("?")
                i += 1
            elif alt[i] in "[]()+?{}^$":
                return None
            else:
                glob.append(alt[i])
                i += 1
        out.append("".join(glob))
    return out


_GROUP = re.compile(r"\((?:\?:)?([^()]*)\)")


def _expand_groups(regex: str, limit: int = 64) -> list[str] | None:
    """``/a/(b|c).*`` -> ``["/a/b.*", "/a/c.*"]``; None when it grows past ``limit`` alternatives."""
    todo, done = [regex], []
    while todo:
        item = todo.pop()
        m = _GROUP.search(item)
        if m is None:
            done.extend(item.split("|") if "|" in item and "(" not in item else [item])
            continue
        todo.extend(item[: m.start()] + alt + item[m.end() :] for alt in m.group(1).split("|"))
        if len(todo) + len(done) > limit:
            return None
    return sorted(set(done))


def _route_globs(matchers: Iterable[tuple[str, str]]) -> list[str]:
    """Route globs for ``route`` (or ``handler``) matchers.

    Raises:
        _Untranslatable: a negative matcher, or a regex that is not a simple alternation of paths.
    """
    routes: list[str] = []
    for op, value in matchers:
        if op == "=":
            routes.append(value)
        elif op == "=~":
            globs = _regex_to_globs(value)
            if globs is None:
                raise _Untranslatable(
                    f"cannot turn the route regex {value!r} into route selectors; "
                    f"add the annotation {_ROUTES_ANNOTATION}"
                )
            routes.extend(globs)
        else:
            raise _Untranslatable(
                "negative route matchers (!=, !~) cannot be imported; "
                f"add the annotation {_ROUTES_ANNOTATION}"
            )
    return routes


def _routes_from(queries: Iterable[str], annotations: Any) -> list[str]:
    """Selectors for the queries' route and method matchers; the first query that names routes decides.

    The annotation ``buttress.dev/routes`` (comma-separated selectors), when present, is taken as it is.

    Raises:
        _Untranslatable: the routes cannot be read from the queries.
    """
    annotated = _dig(annotations, _ROUTES_ANNOTATION)
    if annotated:
        return [r.strip() for r in str(annotated).split(",") if r.strip()]
    routes: list[str] = []
    methods: list[str] = []
    for query in queries:
        m = _matchers(query)
        routes += _route_globs(m.get("route", []) + m.get("handler", []))
        methods += [v for value in _positive(m.get("method", [])) for v in value.split("|") if v]
        if routes:
            break
    prefix = "|".join(sorted(set(methods))) + " " if methods else ""
    return [f"{prefix}{r}" for r in dict.fromkeys(routes)] or [f"{prefix}*"]


def _threshold_from(queries: Iterable[str]) -> float | None:
    for query in queries:
        for op, value in _matchers(query).get("le", []):
            if op == "=":
                try:
                    return float(value)
                except ValueError:
                    return None
    return None


def _statuses_from(query: str) -> list[str]:
    """The status classes an error query selects (``status_class``, or ``code``/``status`` values)."""
    m = _matchers(query)
    classes = {c for value in _positive(m.get("status_class", [])) for c in ("4xx", "5xx") if c in value}
    for value in _positive(m.get("code", []) + m.get("status", [])):
        parts = re.split(r"[|()]", value)
        classes.update(_STATUS_CLASS_OF_DIGIT[p[0]] for p in parts if p[:1] in _STATUS_CLASS_OF_DIGIT)
    return sorted(classes) or ["5xx"]


def _event_sli(threshold_query: str | None, error_query: str | None) -> dict[str, Any]:
    """The SLI fields of a query-pair indicator.

    A latency SLI when ``threshold_query`` reads a histogram bucket (``le="0.25"``: its edge is the
    threshold), otherwise availability with the status classes ``error_query`` selects.
    """
    threshold = _threshold_from([threshold_query] if threshold_query else [])
    if threshold is not None:
        return {"sli": "latency", "threshold": threshold}
    if error_query is None:
        return {"sli": "availability"}
    return {"sli": "availability", "error_statuses": _statuses_from(error_query)}


# --------------------------------------------------------------------------------------------------------
# YAML documents
# --------------------------------------------------------------------------------------------------------


def _yaml_documents(text: str, source: str) -> list[Any]:
    from buttress._extras import require

    yaml = require("yaml", "yaml")
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem("", f"not valid YAML: {exc}", has_value=False)], source) from None


def _dig(doc: Any, *keys: str) -> Any:
    """``doc[k1][k2]…``, or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def _is_number(value: object) -> TypeGuard[int | float]:
    """A real number: ``True`` is an int to Python but not a number a person wrote."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------------------
# OpenSLO v1
# --------------------------------------------------------------------------------------------------------

#: Kinds that are valid OpenSLO but hold no objective to import (SLIs are read through ``indicatorRef``).
_OPENSLO_KINDS_SKIPPED = frozenset(
    {"SLI", "Service", "AlertPolicy", "AlertCondition", "AlertNotificationTarget", "DataSource"}
)
_OPENSLO_DURATION = re.compile(r"^(\d+)(m|h|d|w|M|Q|Y)$")
_OPENSLO_DAYS = {"m": 1 / 1440, "h": 1 / 24, "d": 1, "w": 7, "M": 30, "Q": 90, "Y": 365}
_MILLISECONDS = re.compile(r"_(milliseconds|ms)(_|\b)")


def _query(metric: Any) -> str | None:
    q = _dig(metric, "metricSource", "spec", "query")
    if q is None:
        q = _dig(metric, "metricSource", "spec", "promql")
    return q if isinstance(q, str) else None


@dataclass(slots=True)
class _Indicator:
    """What an OpenSLO indicator translates to, whatever the objective.

    Attributes:
        fields: the SLI fields of the ``[[slo]]`` table (``sli``, and ``threshold`` or ``error_statuses``).
        queries: the queries whose matchers name the routes.
        value_scale: for a ``thresholdMetric``, seconds per unit of an objective's ``value`` (which is the
            threshold); None for a ``ratioMetric``, whose threshold (if any) is in its query.
        routes: the route selectors read from ``queries``; None when they cannot be (a problem says why).
    """

    fields: dict[str, Any]
    queries: list[str]
    value_scale: float | None = None
    routes: list[str] | None = None


class _OpenSLOReader:
    """Translates the documents of one OpenSLO file into ``[[slo]]`` tables, collecting every problem.

    Each method checks one level of a document and returns None (or nothing) after recording a problem,
    so one bad SLO does not hide the problems of the next.
    """

    __slots__ = ("problems", "slis")

    def __init__(self, docs: Sequence[Any]) -> None:
        self.problems = Problems()
        self.slis = {
            _dig(d, "metadata", "name"): d.get("spec")
            for d in docs
            if isinstance(d, Mapping) and d.get("kind") == "SLI"
        }

    def tables(self, docs: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
        """The tables of every SLO document, each with the path its problems are reported at."""
        out: list[tuple[str, dict[str, Any]]] = []
        for n, doc in enumerate(docs):
            if self._is_slo(doc, f"document[{n}]"):
                out += self._slo_tables(doc, f"document[{n}]")
        return out

    def _is_slo(self, doc: Any, where: str) -> bool:
        """Whether ``doc`` is an SLO to import; a document of a kind not skipped is a problem."""
        if not isinstance(doc, Mapping):
            self.problems.add(where, "expected a mapping with apiVersion, kind, metadata and spec", doc)
            return False
        if doc.get("apiVersion") != "openslo/v1":
            self.problems.add(f"{where}.apiVersion", 'must be "openslo/v1"', doc.get("apiVersion"))
            return False
        kind = doc.get("kind")
        if kind == "SLO":
            return True
        if not (isinstance(kind, str) and kind in _OPENSLO_KINDS_SKIPPED):
            self.problems.add(
                f"{where}.kind", "unknown OpenSLO kind; expected SLO, SLI, Service, AlertPolicy…", kind
            )
        return False

    def _slo_tables(self, doc: Mapping[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
        """One table per objective of an SLO document."""
        name = _dig(doc, "metadata", "name")
        where = f"SLO {name}" if isinstance(name, str) else where
        spec = doc.get("spec")
        if not isinstance(spec, Mapping):
            self.problems.add(f"{where}.spec", "is required", spec)
            return []
        indicator = self._indicator_spec(spec, where)
        if indicator is None:
            return []
        base = self._base(spec, where)
        objectives = spec.get("objectives")
        if not isinstance(objectives, list) or not objectives:
            self.problems.add(
                f"{where}.spec.objectives", "needs at least one objective with a target", objectives
            )
            return []
        # Objectives are checked even when the indicator is unusable, so all their problems show at once.
        sli = self._sli(indicator, where, _dig(doc, "metadata", "annotations"))
        out = []
        for i, objective in enumerate(objectives):
            path = f"{where}.spec.objectives[{i}]"
            fields = self._objective(objective, path, sli)
            if fields is not None:
                out.append(
                    (path, {**base, "name": _objective_name(name, objective, i, len(objectives)), **fields})
                )
        return out

    def _indicator_spec(self, spec: Mapping[str, Any], where: str) -> Mapping[str, Any] | None:
        """The inline indicator's spec, or the spec of the SLI document ``indicatorRef`` names."""
        indicator = _dig(spec, "indicator", "spec")
        ref = spec.get("indicatorRef")
        if indicator is None and ref is not None:
            indicator = self.slis.get(ref) if isinstance(ref, str) else None
            if indicator is None:
                self.problems.add(f"{where}.spec.indicatorRef", "names no SLI document in this file", ref)
                return None
        if not isinstance(indicator, Mapping):
            self.problems.add(
                f"{where}.spec.indicator", "is required (an inline indicator or an indicatorRef)"
            )
            return None
        return indicator

    def _base(self, spec: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The fields every objective of the SLO shares: service, description, window."""
        base: dict[str, Any] = {"service": spec.get("service") or "default"}
        if spec.get("description"):
            base["description"] = str(spec["description"])
        window = _openslo_window(spec.get("timeWindow"), f"{where}.spec.timeWindow", self.problems)
        if window is not None:
            base["window"] = window
        return base

    def _sli(self, indicator: Mapping[str, Any], where: str, annotations: Any) -> _Indicator | None:
        """The SLI a ``ratioMetric`` or ``thresholdMetric`` indicator describes, with its routes."""
        ratio, threshold_metric = indicator.get("ratioMetric"), indicator.get("thresholdMetric")
        if isinstance(ratio, Mapping):
            found = self._ratio(ratio, where)
        elif isinstance(threshold_metric, Mapping):
            query = _query(threshold_metric) or ""
            found = _Indicator({"sli": "latency"}, [query], 0.001 if _MILLISECONDS.search(query) else 1.0)
        else:
            self.problems.add(
                f"{where}.spec.indicator.spec",
                "unknown SLI kind: buttress imports ratioMetric and thresholdMetric indicators",
                sorted(indicator),
            )
            return None
        if found is not None:
            try:
                found.routes = _routes_from(found.queries, annotations)
            except _Untranslatable as exc:
                self.problems.add(f"{where}.spec.indicator", str(exc))
        return found

    def _ratio(self, ratio: Mapping[str, Any], where: str) -> _Indicator | None:
        good, bad, total = (_query(ratio.get(k)) for k in ("good", "bad", "total"))
        if total is None or (good is None and bad is None):
            self.problems.add(
                f"{where}.spec.indicator.spec.ratioMetric", "needs total and good or bad queries"
            )
            return None
        return _Indicator(_event_sli(good, bad), [q for q in (good, bad, total) if q])

    def _objective(self, objective: Any, path: str, sli: _Indicator | None) -> dict[str, Any] | None:
        """The fields one objective adds to the SLO's (objective, SLI, threshold, routes), or None.

        ``sli`` is None, or has no routes, when the indicator could not be translated: the objective's
        own fields are still checked.
        """
        if not isinstance(objective, Mapping):
            self.problems.add(path, "expected a mapping with target", objective)
            return None
        if sli is None:
            return None
        fields = {"objective": _openslo_target(objective), **sli.fields}
        if sli.value_scale is not None:
            value = self._threshold_value(objective, path)
            if value is None:
                return None
            fields["threshold"] = value * sli.value_scale
        if sli.routes is None:
            return None
        fields["routes"] = list(sli.routes)
        return fields

    def _threshold_value(self, objective: Mapping[str, Any], path: str) -> float | None:
        """A thresholdMetric objective's ``value``, when its ``op`` says "below" (``lt``/``lte``)."""
        op, value = objective.get("op"), objective.get("value")
        if op not in ("lt", "lte"):
            self.problems.add(f"{path}.op", "a latency objective needs op lt or lte", op)
            return None
        if not _is_number(value):
            self.problems.add(f"{path}.value", "needs the latency threshold as a number", value)
            return None
        return float(value)


def _openslo_target(objective: Mapping[str, Any]) -> Any:
    """``target`` (a fraction), else ``targetPercent`` / 100; anything else is left for the schema."""
    target = objective.get("target")
    percent = objective.get("targetPercent")
    if target is None and percent is not None:
        return percent / 100.0 if _is_number(percent) else percent
    return target


def _objective_name(name: Any, objective: Mapping[str, Any], index: int, count: int) -> Any:
    """The SLO's name, suffixed with the objective's name (or index) when the SLO has several."""
    if count == 1:
        return name
    suffix = objective.get("name") or objective.get("displayName") or str(index)
    return f"{name}-{_slug(str(suffix))}"


def load_openslo(text: str, source: str = "<openslo>") -> list[SLOSpec]:
    """SLOs from OpenSLO v1 YAML (one or more documents).

    ``ratioMetric`` indicators become availability SLOs, or latency SLOs when the good query selects a
    histogram bucket (``le="0.1"``); ``thresholdMetric`` indicators become latency SLOs whose threshold is the
    objective's ``value`` (seconds, or milliseconds when the metric name says ``_milliseconds``/``_ms``).
    Each objective of an SLO becomes one buttress SLO. ``timeWindow`` with ``isRolling: true`` is a rolling
    window; a calendar ``1M`` window is the calendar month.

    Raises:
        ConfigError: every problem, with the document and field it is in.
    """
    docs = _yaml_documents(text, source)
    reader = _OpenSLOReader(docs)
    tables = reader.tables(docs)
    if reader.problems.items:
        raise ConfigError(reader.problems.items, source)
    return _build(tables, reader.problems, source)


def _openslo_window(value: Any, path: str, problems: Problems) -> float | str | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], Mapping):
        problems.add(path, "expected one time window, e.g. [{duration: 30d, isRolling: true}]", value)
        return None
    entry = value[0]
    m = _OPENSLO_DURATION.match(str(entry.get("duration", "")))
    if m is None:
        problems.add(
            f"{path}[0].duration", "expected an OpenSLO duration such as 28d, 4w or 1M", entry.get("duration")
        )
        return None
    n, unit = int(m.group(1)), m.group(2)
    rolling = bool(entry.get("isRolling", entry.get("calendar") is None))
    if unit == "M" and n == 1 and not rolling:
        return "month"
    if unit in ("M", "Q", "Y") and not rolling:
        problems.add(
            f"{path}[0]", "only a one-month calendar window is supported; use a rolling window", entry
        )
        return None
    return _OPENSLO_DAYS[unit] * n * _DAY


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-").lower() or "objective"


# --------------------------------------------------------------------------------------------------------
# Sloth prometheus/v1
# --------------------------------------------------------------------------------------------------------

#: Sloth's alerting keys, by the severity of the default alerts each one switches off.
_SLOTH_ALERTS = (("page", "page_alert"), ("ticket", "ticket_alert"))


def load_sloth(text: str, source: str = "<sloth>") -> list[SLOSpec]:
    """SLOs from a Sloth ``version: "prometheus/v1"`` file.

    Sloth objectives are percentages (``99.9``). An ``events`` SLI whose error query reads a histogram bucket
    (``le="0.25"``) is a latency SLO with that threshold; otherwise it is availability with the error statuses
    its error query selects. ``page_alert``/``ticket_alert`` with ``disable: true`` drop those alerts.

    Raises:
        ConfigError: every problem, with the SLO and field it is in.
    """
    docs = _yaml_documents(text, source)
    problems = Problems()
    tables: list[tuple[str, dict[str, Any]]] = []
    for n, doc in enumerate(docs):
        for i, slo in enumerate(_sloth_slos(doc, f"document[{n}]", problems)):
            table = _sloth_table(doc, slo, f"slos[{i}]", problems)
            if table is not None:
                tables.append((f"slos[{i}]", table))
    if problems.items:
        raise ConfigError(problems.items, source)
    return _build(tables, problems, source)


def _sloth_slos(doc: Any, where: str, problems: Problems) -> list[Any]:
    """The ``slos`` list of a Sloth document (empty after recording a problem)."""
    if not isinstance(doc, Mapping) or doc.get("version") != "prometheus/v1":
        problems.add(f"{where}.version", 'must be "prometheus/v1" (a Sloth spec)', _dig(doc, "version"))
        return []
    slos = doc.get("slos")
    if not isinstance(slos, list) or not slos:
        problems.add(f"{where}.slos", "needs at least one SLO", slos)
        return []
    return slos


def _sloth_table(doc: Mapping[str, Any], slo: Any, path: str, problems: Problems) -> dict[str, Any] | None:
    """The ``[[slo]]`` table of one Sloth SLO, or None after recording why there is none."""
    if not isinstance(slo, Mapping):
        problems.add(path, "expected a mapping", slo)
        return None
    objective = slo.get("objective")
    if not _is_number(objective):
        problems.add(f"{path}.objective", "expected a percentage such as 99.9", objective)
        return None
    table: dict[str, Any] = {"name": slo.get("name"), "service": doc.get("service") or "default"}
    if slo.get("description"):
        table["description"] = str(slo["description"])
    # 100 % stays 1.0 so that the schema explains why it cannot be an objective.
    table["objective"] = 1.0 if objective >= 100 else _round(objective / 100.0)
    labels = {**(doc.get("labels") or {}), **(slo.get("labels") or {})}
    if labels:
        table["labels"] = {str(k): str(v) for k, v in labels.items()}
    sli = _sloth_sli(slo, path, problems)
    if sli is None:
        return None
    table.update(sli)
    alerts = _sloth_alerts(slo.get("alerting"))
    if alerts is not None:
        table["alerts"] = alerts
    return table


def _sloth_sli(slo: Mapping[str, Any], path: str, problems: Problems) -> dict[str, Any] | None:
    """The SLI fields and routes of a Sloth ``events`` SLI."""
    sli = slo.get("sli")
    events = _dig(sli, "events")
    if not isinstance(events, Mapping):
        kinds = sorted(sli) if isinstance(sli, Mapping) else sli
        problems.add(f"{path}.sli", "unknown SLI kind: buttress imports Sloth events SLIs", kinds)
        return None
    error_q, total_q = events.get("error_query"), events.get("total_query")
    if not isinstance(error_q, str) or not isinstance(total_q, str):
        problems.add(f"{path}.sli.events", "needs error_query and total_query")
        return None
    try:
        routes = _routes_from([error_q, total_q], slo.get("annotations"))
    except _Untranslatable as exc:
        problems.add(f"{path}.sli.events", str(exc))
        return None
    return {**_event_sli(error_q, error_q), "routes": routes}


def _sloth_alerts(alerting: Any) -> list[dict[str, Any]] | None:
    """The default alerts less the severities ``disable: true`` switches off; None when all stay."""
    keep = {severity for severity, key in _SLOTH_ALERTS if not _dig(alerting, key, "disable")}
    if len(keep) == len(_SLOTH_ALERTS):
        return None
    return [dict(a) for a in DEFAULT_ALERTS if a["severity"] in keep]


def load_file(path: str | Path, kind: str | None = None) -> list[SLOSpec]:
    """SLOs from an OpenSLO or Sloth YAML file; ``kind`` (``"openslo"``/``"sloth"``) or sniffed.

    Raises:
        ConfigError: the file cannot be read, is neither format, or has bad SLOs.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}", str(file)) from None
    if kind is None:
        if "openslo/v1" in text:
            kind = "openslo"
        elif "prometheus/v1" in text:
            kind = "sloth"
        else:
            raise ConfigError(
                "not an OpenSLO v1 (apiVersion: openslo/v1) or Sloth (version: prometheus/v1) file", str(file)
            )
    if kind == "openslo":
        return load_openslo(text, str(file))
    if kind == "sloth":
        return load_sloth(text, str(file))
    raise ValueError(f"kind must be 'openslo' or 'sloth', got {kind!r}")


# --------------------------------------------------------------------------------------------------------
# Back to TOML
# --------------------------------------------------------------------------------------------------------

_DEFAULT_ALERT_WINDOWS = tuple(
    AlertWindow(a["severity"], a["long"], a["short"], a["burn_rate"]) for a in DEFAULT_ALERTS
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) and not value.is_integer() else str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_\-]+", key) else _toml_value(key)


def to_toml(specs: Iterable[SLOSpec]) -> str:
    """``[[slo]]`` tables for ``buttress.toml`` that load back into the same specs."""
    return "\n\n".join("\n".join(_toml_lines(s)) for s in specs) + "\n"


def _toml_lines(s: SLOSpec) -> list[str]:
    """One ``[[slo]]`` table; fields left at their defaults are not written."""
    lines = ["[[slo]]", f"name = {_toml_value(s.name)}"]
    if s.service != "default":
        lines.append(f"service = {_toml_value(s.service)}")
    if s.description:
        lines.append(f"description = {_toml_value(s.description)}")
    lines.append(f"sli = {_toml_value(s.sli)}")
    if s.threshold is not None:
        lines.append(f'threshold = "{format_duration(s.threshold)}"')
    lines.append(f"objective = {_round(s.objective)!r}")
    lines.append(f'window = "{s.window_label}"')
    lines.append(f"routes = {_toml_value([str(r) for r in s.routes])}")
    if s.error_statuses != {"5xx"}:
        lines.append(f"error_statuses = {_toml_value(sorted(s.error_statuses))}")
    if s.min_traffic != 10:
        lines.append(f"min_traffic = {s.min_traffic}")
    if s.labels:
        lines.append(f"labels = {_toml_value(dict(s.labels))}")
    if s.alerts != _DEFAULT_ALERT_WINDOWS:
        lines.append(f"alerts = {_toml_value([_toml_alert(a) for a in s.alerts])}")
    return lines


def _toml_alert(a: AlertWindow) -> dict[str, Any]:
    return {
        "severity": a.severity,
        "long": format_duration(a.long),
        "short": format_duration(a.short),
        "burn_rate": a.burn_rate,
    }


def _round(x: float) -> float:
    # 99.9 / 100 is 0.9990000000000001 in binary; write what the person meant.
    return float(f"{x:.12g}") if math.isfinite(x) else x


__all__ += ["SLI_KINDS", "format_duration"]
