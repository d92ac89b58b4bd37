"""Parsing the list endpoints' ``filter``, ``sort``, ``include`` and paging parameters.

``filter`` is a JSON object whose keys are the resource's filterable fields; a value is either the value
to match or an object of operators::

    filter={"status": "archived", "year": {"gte": 2015, "lt": 2020}, "topic": {"contains": "cloud"}}

``sort`` is a comma-separated list of fields, each optionally prefixed with ``-`` for descending order
(``sort=-date,title``). Anything malformed — bad JSON, an unknown field or operator, a value of the wrong
type — raises :class:`~buttress.demo.errors.ApiError` 400 saying exactly what and what is allowed; it is
never a 500.

Parsed parameters are plain tuples, hashable and canonical, so they double as cache keys: the same query
asked with its keys in another order hits the same entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from buttress.demo.errors import ApiError

__all__ = [
    "FieldSpec",
    "Filter",
    "Page",
    "Sort",
    "parse_filter",
    "parse_include",
    "parse_page",
    "parse_sort",
]

_OPS_BY_KIND = {
    "int": ("eq", "ne", "gt", "gte", "lt", "lte", "in"),
    "str": ("eq", "ne", "in", "contains"),
}

#: A parsed filter: ``((field, op, value), ...)`` sorted by field and operator.
Filter = tuple[tuple[str, str, Any], ...]
#: A parsed sort: ``((field, descending), ...)`` in the order given.
Sort = tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class FieldSpec:
    """A filterable field: its kind (``"int"`` or ``"str"``) and, for strings, the allowed values."""

    kind: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """The page asked for (1-based) and its size."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.limit


def _bad(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def _check_int(name: str, spec: FieldSpec, op: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):  # JSON true is no year
        raise _bad("invalid_filter", f"filter.{name}: expected a whole number, got {json.dumps(value)}")
    return value


def _check_str(name: str, spec: FieldSpec, op: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise _bad("invalid_filter", f"filter.{name}: expected a string, got {json.dumps(value)}")
    if spec.choices and op in ("eq", "ne") and value not in spec.choices:
        allowed = ", ".join(spec.choices)
        raise _bad("invalid_filter", f"filter.{name}: {value!r} is not one of {allowed}")
    if op == "contains" and len(value) > 100:
        raise _bad("invalid_filter", f"filter.{name}: a contains value is at most 100 characters")
    return value


#: How a value is checked, by the field's kind.
_CHECKS = {"int": _check_int, "str": _check_str}


def _check_value(name: str, spec: FieldSpec, op: str, value: Any) -> Any:
    if op == "in":
        if not isinstance(value, list) or not value:
            raise _bad("invalid_filter", f'filter.{name}: "in" needs a non-empty list of values')
        return tuple(_check_value(name, spec, "eq", v) for v in value)
    return _CHECKS[spec.kind](name, spec, op, value)


def _load_object(raw: str) -> dict[str, Any]:
    """The ``filter`` text as a JSON object, or 400 saying what an object looks like."""
    if len(raw) > 2000:
        raise _bad("invalid_filter", "filter is longer than 2000 characters")
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _bad(
            "invalid_filter",
            f'filter is not valid JSON ({exc.msg} at position {exc.pos}); expected an object such as {{"status": "archived"}}',  # noqa: E501
        ) from None
    if not isinstance(parsed, dict):
        raise _bad("invalid_filter", 'filter must be a JSON object such as {"status": "archived"}')
    return parsed


def _conditions(name: str, spec: FieldSpec, condition: Any) -> list[tuple[str, str, Any]]:
    """One field's condition: a bare value means ``eq``; an object maps operators to values."""
    if not isinstance(condition, dict):
        return [(name, "eq", _check_value(name, spec, "eq", condition))]
    if not condition:
        raise _bad("invalid_filter", f"filter.{name}: empty operator object")
    ops = _OPS_BY_KIND[spec.kind]
    out = []
    for op, value in condition.items():
        if op not in ops:
            raise _bad("invalid_filter", f"filter.{name}: unknown operator {op!r}; allowed: {', '.join(ops)}")
        out.append((name, op, _check_value(name, spec, op, value)))
    return out


def parse_filter(raw: str | None, fields: Mapping[str, FieldSpec]) -> Filter:
    """Parse the ``filter`` query parameter against the resource's filterable ``fields``.

    Raises:
        ApiError: 400 ``invalid_filter`` naming the problem and what is allowed.
    """
    if raw is None or raw.strip() == "":
        return ()
    out: list[tuple[str, str, Any]] = []
    for name, condition in _load_object(raw).items():
        spec = fields.get(name)
        if spec is None:
            raise _bad("invalid_filter", f"filter: unknown field {name!r}; filterable: {', '.join(fields)}")
        out.extend(_conditions(name, spec, condition))
    return tuple(sorted(out, key=lambda t: (t[0], t[1])))


def parse_sort(raw: str | None, allowed: tuple[str, ...], default: Sort) -> Sort:
    """Parse ``sort=-date,title`` against the resource's sortable fields.

    Raises:
        ApiError: 400 ``invalid_sort`` naming the bad field and the sortable ones.
    """
    if raw is None or raw.strip() == "":
        return default
    out: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for part in raw.split(","):
        item = part.strip()
        descending = item.startswith("-")
        name = item[1:] if descending or item.startswith("+") else item
        if name not in allowed:
            shown = item or "(empty)"
            raise _bad("invalid_sort", f"sort: unknown field {shown!r}; sortable: {', '.join(allowed)}")
        if name in seen:
            raise _bad("invalid_sort", f"sort: field {name!r} given twice")
        seen.add(name)
        out.append((name, descending))
    return tuple(out)


def parse_include(raw: str | None, allowed: tuple[str, ...]) -> frozenset[str]:
    """Parse ``include=venue,sessions`` against what the resource can embed.

    Raises:
        ApiError: 400 ``invalid_include``.
    """
    if raw is None or raw.strip() == "":
        return frozenset()
    items = {p.strip() for p in raw.split(",")}
    unknown = sorted(items - set(allowed))
    if unknown:
        raise _bad(
            "invalid_include",
            f"include: unknown {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}",
        )
    return frozenset(items)


def parse_page(page: str | None, limit: str | None, *, default_limit: int = 20, max_limit: int = 100) -> Page:
    """Parse ``page`` (from 1) and ``limit`` (1 to ``max_limit``).

    Raises:
        ApiError: 400 ``invalid_page`` for anything but whole numbers in range.
    """

    def number(name: str, raw: str | None, default: int, hi: int) -> int:
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _bad("invalid_page", f"{name} must be a whole number, got {raw!r}") from None
        if not 1 <= value <= hi:
            raise _bad("invalid_page", f"{name} must be between 1 and {hi}, got {value}")
        return value

    return Page(number("page", page, 1, 100_000), number("limit", limit, default_limit, max_limit))
