"""Route selectors: which endpoints an SLO covers, written the way people name endpoints.

A selector is ``"GET /api/v1/events*"``: an optional HTTP method (or a ``|``-separated list of them), then a
pattern matched against the *route template* (``/api/v1/events/{event_id}``), never the concrete path. In the
pattern ``*`` matches any run of characters (slashes included) and ``?`` one character; everything else,
braces included, is literal. ``"*"`` alone selects every route, matched or not.

The same selector turns into a PromQL label matcher (:meth:`RouteSelector.promql_matchers`), so the SLO
engine and the generated Prometheus rules always agree on which series count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["METHODS", "UNMATCHED", "RouteSelector", "glob_to_regex"]

#: The route label of requests that matched no route: one series, however many distinct paths.
UNMATCHED = "<unmatched>"

#: Methods kept as their own label value; anything else is recorded as ``OTHER`` (bounded labels).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def glob_to_regex(pattern: str) -> str:
    """An anchored-by-caller regular expression (RE2 compatible) for a ``*``/``?`` glob."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class RouteSelector:
    """One parsed selector: the methods it accepts (empty means any) and its route pattern.

    Build with :meth:`parse`. ``matches(route, method)`` is called once per new series, never per request;
    the engine caches the answer.
    """

    methods: frozenset[str]
    pattern: str
    _regex: re.Pattern[str] = field(compare=False, repr=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> RouteSelector:
        """Parse ``"GET /api/*"``, ``"GET|POST /x"``, ``"/health"`` or ``"*"``.

        Raises:
            ValueError: the selector is empty, has an unknown method, or a pattern that is not a route.
        """
        if not isinstance(text, str):
            raise ValueError('a route selector is a string such as "GET /api/v1/events*" or "*"')
        parts = text.split()
        if not parts:
            raise ValueError('a route selector cannot be empty; write "*" for every route')
        if len(parts) > 2:
            raise ValueError('a route selector is "[METHOD[|METHOD]] PATTERN", e.g. "GET /api/v1/events*"')
        methods: frozenset[str] = frozenset()
        if len(parts) == 2:
            names = [m.upper() for m in parts[0].split("|")]
            unknown = [m for m in names if m not in METHODS and m != "*"]
            if unknown or not all(names):
                raise ValueError(
                    f"unknown HTTP method {parts[0]!r} in route selector; "
                    f"use one of {', '.join(sorted(METHODS))}"
                )
            methods = frozenset() if "*" in names else frozenset(names)
        pattern = parts[-1]
        if not (pattern.startswith(("/", "*")) or pattern == UNMATCHED):
            raise ValueError(
                f"route pattern {pattern!r} must start with '/' or '*' (it matches route templates)"
            )
        return cls(methods, pattern, re.compile(glob_to_regex(pattern)))

    def matches(self, route: str, method: str) -> bool:
        """Whether a series with this route template and method is selected."""
        if self.methods and method not in self.methods:
            return False
        return self._regex.fullmatch(route) is not None

    def promql_matchers(self) -> list[str]:
        """Label matchers selecting the same series in Prometheus (``route=~"…"``, ``method=~"…"``)."""
        out = []
        if self.methods:
            ms = sorted(self.methods)
            out.append(f'method="{ms[0]}"' if len(ms) == 1 else f'method=~"{"|".join(ms)}"')
        if self.pattern != "*":
            regex = glob_to_regex(self.pattern)
            if regex == re.escape(self.pattern):
                out.append(f'route="{_promql_escape(self.pattern)}"')
            else:
                out.append(f'route=~"{_promql_escape(regex)}"')
        return out

    def __str__(self) -> str:
        if not self.methods:
            return self.pattern
        return f"{'|'.join(sorted(self.methods))} {self.pattern}"


def _promql_escape(text: str) -> str:
    # PromQL string literals use Go escaping: backslashes and double quotes must be escaped.
    return text.replace("\\", "\\\\").replace('"', '\\"')
