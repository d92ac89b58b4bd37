"""Database timing: per-statement latency from SQLAlchemy engine events, and a redacted slow-query log.

::

    engine = create_engine(url)                      # or create_async_engine(url)
    sql = instrument_engine(engine, slow_threshold=0.2)
    ...
    sql.slow_queries[-1]   # SlowQuery(fingerprint="SELECT … WHERE id = ?", seconds=0.31, parameters=1)

Every statement is timed between SQLAlchemy's ``before_cursor_execute`` and ``after_cursor_execute`` events
(for an async engine, on its ``sync_engine``, where SQLAlchemy runs the same events) and counted under its
**fingerprint**: the SQL with comments stripped, literals and bind parameters turned into ``?``, ``IN``
lists and multi-row ``VALUES`` collapsed, whitespace normalised. So ``WHERE id = 42`` and ``WHERE id = 7``
are one series, and no customer data ends up in a label.

Metrics: ``buttress_db_query_duration_seconds{statement}`` (latency) and
``buttress_db_queries{statement,outcome}`` (``ok``/``error``). Distinct fingerprints are bounded by
``max_statements``; later ones are counted under ``<other>``.

A statement slower than ``slow_threshold`` is logged on the ``buttress.slo.sql`` logger (WARNING) and kept
in :attr:`SQLInstrumentation.slow_queries` — its fingerprint, duration and *how many* parameters it had;
parameter values are never logged or stored.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from buttress._extras import require
from buttress.telemetry.registry import REGISTRY, Counter, Registry

__all__ = ["OTHER_STATEMENT", "SQLInstrumentation", "SlowQuery", "fingerprint", "instrument_engine"]

log = logging.getLogger("buttress.slo.sql")

#: The ``statement`` label of fingerprints beyond ``max_statements``.
OTHER_STATEMENT = "<other>"

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"(?:[EeNnBbXx])?'(?:[^']|'')*'|\$\$.*?\$\$", re.S)
_PARAMS = re.compile(r"%\(\w+\)s|%s|(?<![:\w]):\w+|\$\d+|\?")
_NUMBERS = re.compile(r"(?<![\w.$])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_LISTS = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_ROWS = re.compile(r"(\(\?\))(?:\s*,\s*\(\?\))+")
_SPACES = re.compile(r"\s+")
_BOOLEANS = re.compile(r"\b(?:TRUE|FALSE|NULL)\b", re.I)


def fingerprint(statement: str) -> str:
    """The statement with every value replaced by ``?`` and lists collapsed: the shape of the query.

    >>> fingerprint("SELECT * FROM events WHERE id IN (1, 2, 3) AND title = 'x'  -- hot path")
    'SELECT * FROM events WHERE id IN (?) AND title = ?'
    """
    text = _COMMENTS.sub(" ", statement)
    text = _STRINGS.sub("?", text)
    text = _PARAMS.sub("?", text)
    text = _NUMBERS.sub("?", text)
    text = _SPACES.sub(" ", text).strip()
    text = _LISTS.sub("(?)", text)
    text = _ROWS.sub(r"\1", text)
    return text.rstrip(";").strip()


@dataclass(frozen=True, slots=True)
class SlowQuery:
    """One statement that took longer than the threshold (values redacted by construction).

    Attributes:
        fingerprint: the statement's shape, with ``?`` for every value.
        seconds: how long the cursor execution took.
        parameters: how many bound parameters it had (rows × columns for ``executemany``).
        at: wall-clock time it finished.
        failed: whether it raised.
    """

    fingerprint: str
    seconds: float
    parameters: int
    at: float
    failed: bool = False


class _Statement:
    """Instruments of one fingerprint."""

    __slots__ = ("errors", "fingerprint", "latency_add", "ok")

    def __init__(self, fp: str, ok: Counter, errors: Counter, latency_add: Callable[[float], None]) -> None:
        self.fingerprint = fp
        self.ok = ok
        self.errors = errors
        self.latency_add = latency_add


def _count_parameters(parameters: Any, executemany: bool) -> int:
    if parameters is None:
        return 0
    if executemany and isinstance(parameters, list | tuple):
        return sum(_count_parameters(p, False) for p in parameters)
    if isinstance(parameters, dict | list | tuple):
        return len(parameters)
    return 1


class SQLInstrumentation:
    """The listeners attached to one engine; :func:`instrument_engine` builds it.

    Attributes:
        slow_queries: the most recent slow statements (up to ``slow_log_size``), oldest first.
    """

    def __init__(
        self,
        engine: Any,
        *,
        registry: Registry = REGISTRY,
        slow_threshold: float | None = 0.5,
        slow_log_size: int = 100,
        max_statements: int = 500,
        logger: logging.Logger = log,
    ) -> None:
        self._event = require("sqlalchemy.event", "sql")
        self.engine = getattr(engine, "sync_engine", engine)
        self.registry = registry
        self.slow_threshold = slow_threshold
        self.max_statements = max_statements
        self.logger = logger
        self.slow_queries: deque[SlowQuery] = deque(maxlen=slow_log_size)
        self._by_sql: dict[str, _Statement] = {}
        self._by_fp: dict[str, _Statement] = {}
        self._lock = threading.Lock()
        self._event.listen(self.engine, "before_cursor_execute", self._before)
        self._event.listen(self.engine, "after_cursor_execute", self._after)
        self._event.listen(self.engine, "handle_error", self._error)

    def remove(self) -> None:
        """Detach the listeners from the engine."""
        self._event.remove(self.engine, "before_cursor_execute", self._before)
        self._event.remove(self.engine, "after_cursor_execute", self._after)
        self._event.remove(self.engine, "handle_error", self._error)

    def _statement(self, sql: str) -> _Statement:
        found = self._by_sql.get(sql)
        if found is not None:
            return found
        fp = fingerprint(sql)
        with self._lock:
            found = self._by_fp.get(fp)
            if found is None:
                label = fp if len(self._by_fp) < self.max_statements else OTHER_STATEMENT
                found = self._by_fp.get(label)
                if found is None:
                    r = self.registry
                    found = _Statement(
                        label,
                        r.counter(
                            "buttress_db_queries",
                            "SQL statements executed",
                            {"statement": label, "outcome": "ok"},
                        ),
                        r.counter(
                            "buttress_db_queries",
                            "SQL statements executed",
                            {"statement": label, "outcome": "error"},
                        ),
                        r.latency(
                            "buttress_db_query_duration_seconds",
                            "SQL statement duration",
                            {"statement": label},
                        ).sketch.add,
                    )
                    self._by_fp[label] = found
                self._by_fp.setdefault(fp, found)
            if len(self._by_sql) > 10 * self.max_statements:
                self._by_sql.clear()  # statements built with inline literals would grow this forever
            self._by_sql[sql] = found
            return found

    # SQLAlchemy calls these with the connection; the start time rides on conn.info, as its docs recipe does,
    # so nested and concurrent connections each keep their own stack.
    def _before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        conn.info.setdefault("buttress_query_start", []).append(perf_counter())

    def _after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        starts = conn.info.get("buttress_query_start")
        if not starts:
            return
        elapsed = perf_counter() - starts.pop()
        s = self._statement(statement)
        s.ok.value += 1
        s.latency_add(elapsed)
        if self.slow_threshold is not None and elapsed >= self.slow_threshold:
            self._slow(s.fingerprint, elapsed, _count_parameters(parameters, executemany), False)

    def _error(self, ctx: Any) -> None:
        conn = ctx.connection
        starts = conn.info.get("buttress_query_start") if conn is not None else None
        if not starts or ctx.statement is None:
            return
        elapsed = perf_counter() - starts.pop()
        s = self._statement(ctx.statement)
        s.errors.value += 1
        s.latency_add(elapsed)
        if self.slow_threshold is not None and elapsed >= self.slow_threshold:
            executemany = bool(getattr(ctx.execution_context, "executemany", False))
            self._slow(s.fingerprint, elapsed, _count_parameters(ctx.parameters, executemany), True)

    def _slow(self, fp: str, seconds: float, parameters: int, failed: bool) -> None:
        entry = SlowQuery(fp, seconds, parameters, time.time(), failed)
        self.slow_queries.append(entry)
        self.logger.warning(
            "slow query (%.3f s%s): %s [%d parameter%s redacted]",
            seconds,
            ", failed" if failed else "",
            fp,
            parameters,
            "" if parameters == 1 else "s",
        )


def instrument_engine(
    engine: Any,
    *,
    registry: Registry = REGISTRY,
    slow_threshold: float | None = 0.5,
    slow_log_size: int = 100,
    max_statements: int = 500,
    logger: logging.Logger = log,
) -> SQLInstrumentation:
    """Time every statement run through a SQLAlchemy ``Engine`` or ``AsyncEngine``.

    Args:
        engine: a sync engine, or an async engine (its ``sync_engine`` is instrumented).
        registry: where the ``buttress_db_*`` metrics go.
        slow_threshold: seconds from which a statement is logged as slow; ``None`` disables the log.
        slow_log_size: how many slow statements :attr:`SQLInstrumentation.slow_queries` keeps.
        max_statements: distinct fingerprints kept as labels.
        logger: where slow statements are logged.

    Returns:
        The instrumentation; call ``.remove()`` to detach it.

    Raises:
        ImportError: SQLAlchemy is not installed (the ``sql`` extra).
    """
    return SQLInstrumentation(
        engine,
        registry=registry,
        slow_threshold=slow_threshold,
        slow_log_size=slow_log_size,
        max_statements=max_statements,
        logger=logger,
    )
