"""Loading and validating ``buttress.toml`` (or ``[tool.buttress]`` in ``pyproject.toml``).

A configuration is checked whole, against a schema, before anything is built from it; every problem is
reported at once as ``dotted.path: message (got value)``, and unknown keys are errors (with a suggestion
when a known key is close), never silently ignored::

    [resilience.policies.email]
    timeout = "2s"
    retry = { attempts = 3, backoff = "exponential", base = "1s", factor = 2, max = "10s", jitter = "full" }

Durations are strings with units — ``250ms``, ``10s``, ``15m``, ``1h``, ``30d``, or combined ``1h30m`` —
or plain numbers of seconds. Sizes are ``512B``, ``64KB``, ``512MB``, ``1GiB`` (KB = 1000, KiB = 1024).

Each part declares its own section schema with the field types here (:class:`Table`, :class:`Duration`,
…) in ``buttress/<part>/schema.py`` as ``SCHEMA``; :data:`SECTIONS` names them, and they are imported
only when a configuration uses that section. That lookup is the one place a lower layer names the parts
above it: it lets one loader report every problem in one pass (see docs/architecture.md).
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import re
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buttress.errors import ConfigError, ConfigProblem

__all__ = [
    "SECTIONS",
    "Boolean",
    "Choice",
    "Config",
    "ConfigError",
    "Duration",
    "Field",
    "Integer",
    "ListOf",
    "MapOf",
    "Number",
    "Problems",
    "Size",
    "String",
    "Table",
    "current",
    "load",
    "load_config",
    "loads",
    "parse_duration",
    "parse_size",
    "use",
]

# --------------------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------------------

_DURATION_UNITS = {
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h|d|w)")
_DURATION_HINT = 'a duration such as "250ms", "10s", "15m", "1h", "30d" or a number of seconds'


_DURATION_TEXT = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:us|µs|ms|s|m|h|d|w)\s*)+")


def parse_duration(value: object) -> float:
    """Seconds from ``"250ms"``, ``"10s"``, ``"15m"``, ``"1h"``, ``"30d"``, ``"1h30m"`` or a number.

    Raises:
        ValueError: with a message saying what is accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {_DURATION_HINT}")
    try:
        seconds = float(value) if not isinstance(value, str) else _duration_text(value.strip().lower())
    except OverflowError:
        raise ValueError(f"expected a finite duration, {_DURATION_HINT}") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"expected a finite duration, {_DURATION_HINT}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _duration_text(text: str) -> float:
    if text.startswith("-"):
        raise ValueError("a duration cannot be negative")
    # The whole text must be unit-carrying parts; then each part adds its seconds.
    if _DURATION_TEXT.fullmatch(text) is None:
        raise ValueError(f"expected {_DURATION_HINT}")
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(value: object) -> int:
    """Bytes from ``"512MB"``, ``"64KiB"``, ``"1GB"`` or a whole number of bytes."""
    if isinstance(value, bool):
        raise ValueError('expected a size such as "512MB", "64KiB" or a number of bytes')
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        m = _SIZE.match(value.lower())
        if m is None or m.group(2) not in _SIZE_UNITS | {"": 1}:
            raise ValueError('expected a size such as "512MB", "64KiB" or a number of bytes')
        size = int(float(m.group(1)) * (_SIZE_UNITS.get(m.group(2), 1)))
    else:
        raise ValueError('expected a size such as "512MB", "64KiB" or a number of bytes')
    if size < 0:
        raise ValueError("a size cannot be negative")
    return size


# --------------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------------

_UNSET: Any = object()


class Problems:
    """Accumulates problems so a whole file is checked in one pass (what a ``Table(check=...)`` gets)."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, path: str, message: str, value: Any = _UNSET) -> None:
        """Record a problem at dotted ``path``; pass ``value`` to show what was given."""
        self.items.append(
            ConfigProblem(path, message, None if value is _UNSET else value, value is not _UNSET)
        )


@dataclass
class Field:
    """A configuration value: its default, whether it is required, and a line of documentation.

    Subclasses implement :meth:`convert`, raising ``ValueError`` with a message that says what is allowed.
    """

    default: Any = _UNSET
    required: bool = False
    doc: str = ""

    def convert(self, value: Any) -> Any:
        """Turn the raw TOML value into the checked Python value."""
        return value

    def parse(self, value: Any, path: str, problems: Problems) -> Any:
        """Convert ``value`` or record why it cannot be, returning ``_UNSET`` on failure."""
        try:
            return self.convert(value)
        except ValueError as exc:
            problems.add(path, str(exc), value)
            return _UNSET

    def describe(self) -> str:
        """A short phrase for help texts and summaries."""
        return type(self).__name__.lower()


@dataclass
class Duration(Field):
    """A duration in seconds (see :func:`parse_duration`); ``minimum`` / ``positive`` bound it."""

    positive: bool = False
    maximum: float | None = None

    def convert(self, value: Any) -> float:
        """Seconds, checked against the bounds."""
        seconds = parse_duration(value)
        if self.positive and seconds <= 0:
            raise ValueError('must be a positive duration such as "100ms"')
        if self.maximum is not None and seconds > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g} seconds")
        return seconds


@dataclass
class Size(Field):
    """A size in bytes (see :func:`parse_size`)."""

    def convert(self, value: Any) -> int:
        """Bytes."""
        return parse_size(value)


@dataclass
class Number(Field):
    """A real number with optional bounds; ``*_exclusive`` make a bound open."""

    minimum: float | None = None
    maximum: float | None = None
    minimum_exclusive: bool = False
    maximum_exclusive: bool = False

    def convert(self, value: Any) -> float:
        """The number, checked against the bounds."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number{self._range()}")
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"expected a finite number{self._range()}")
        lo, hi = self.minimum, self.maximum
        if lo is not None and (v < lo or (self.minimum_exclusive and v == lo)):
            raise ValueError(f"out of range: must be{self._range()}")
        if hi is not None and (v > hi or (self.maximum_exclusive and v == hi)):
            raise ValueError(f"out of range: must be{self._range()}")
        return v

    def _range(self) -> str:
        lo, hi = self.minimum, self.maximum
        if lo is None and hi is None:
            return ""
        left = "(" if self.minimum_exclusive else "["
        right = ")" if self.maximum_exclusive else "]"
        return f" in {left}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{right}"


@dataclass
class Integer(Field):
    """A whole number with optional inclusive bounds."""

    minimum: int | None = None
    maximum: int | None = None

    def convert(self, value: Any) -> int:
        """The integer, checked against the bounds."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected a whole number")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}")
        return value


@dataclass
class Boolean(Field):
    """``true`` or ``false``."""

    def convert(self, value: Any) -> bool:
        """The boolean."""
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value


@dataclass
class String(Field):
    """A string, optionally matching ``pattern`` (a regular expression) and not empty."""

    pattern: str | None = None
    allow_empty: bool = False

    def convert(self, value: Any) -> str:
        """The string."""
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if not value and not self.allow_empty:
            raise ValueError("must not be empty")
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise ValueError(f"must match {self.pattern}")
        return value


@dataclass
class Choice(Field):
    """One of a fixed set of strings."""

    choices: Sequence[str] = ()

    def convert(self, value: Any) -> str:
        """The chosen string."""
        if not isinstance(value, str) or value not in self.choices:
            hint = _suggest(value, self.choices) if isinstance(value, str) else ""
            raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}{hint}")
        return value


@dataclass
class Custom(Field):
    """A value checked by a function that returns the converted value or raises ``ValueError``."""

    check: Callable[[Any], Any] = lambda v: v

    def convert(self, value: Any) -> Any:
        """Whatever ``check`` returns."""
        return self.check(value)


@dataclass
class ListOf(Field):
    """A list whose items all follow ``item``; ``min_items`` guards against an empty list."""

    item: Field = field(default_factory=Field)
    min_items: int = 0

    def parse(self, value: Any, path: str, problems: Problems) -> Any:
        """Each item parsed at ``path[i]``."""
        if not isinstance(value, list):
            problems.add(path, "expected a list", value)
            return _UNSET
        if len(value) < self.min_items:
            problems.add(path, f"needs at least {self.min_items} item(s)", value)
            return _UNSET
        out = [self.item.parse(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _UNSET if any(v is _UNSET for v in out) else out


@dataclass
class Table(Field):
    """A TOML table with known keys; unknown keys are problems.

    ``shorthand`` lets a scalar stand for the table (``timeout = "2s"`` for ``{ duration = "2s" }``) by
    naming the key it fills.
    """

    fields: Mapping[str, Field] = field(default_factory=dict)
    shorthand: str | None = None
    check: Callable[[dict[str, Any], str, Problems], None] | None = None

    def parse(self, value: Any, path: str, problems: Problems) -> Any:
        """Every key checked; defaults filled in; ``check`` runs for cross-field rules."""
        if self.shorthand is not None and not isinstance(value, dict):
            value = {self.shorthand: value}
        if not isinstance(value, dict):
            problems.add(path, "expected a table", value)
            return _UNSET
        before = len(problems.items)
        out = self._given(value, path, problems)
        self._defaults(out, path, problems)
        if len(problems.items) == before and self.check is not None:
            self.check(out, path, problems)
        return out if len(problems.items) == before else _UNSET

    def _given(self, value: dict[str, Any], path: str, problems: Problems) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, raw in value.items():
            spec = self.fields.get(key)
            if spec is None:
                allowed = ", ".join(sorted(self.fields))
                problems.add(_join(path, key), f"unknown key; allowed: {allowed}{_suggest(key, self.fields)}")
                continue
            out[key] = spec.parse(raw, _join(path, key), problems)
        return out

    def _defaults(self, out: dict[str, Any], path: str, problems: Problems) -> None:
        for key, spec in self.fields.items():
            if key in out:
                continue
            if spec.required:
                problems.add(_join(path, key), "is required")
            elif spec.default is _UNSET:
                out[key] = None
            else:
                out[key] = spec.default() if callable(spec.default) else spec.default


@dataclass
class MapOf(Field):
    """A table of named entries that all follow ``value`` (``[cache.namespaces.<name>]``)."""

    value: Field = field(default_factory=Field)
    key_pattern: str = r"[A-Za-z0-9_.\-]+"

    def parse(self, value: Any, path: str, problems: Problems) -> Any:
        """Each entry parsed at ``path.<name>``."""
        if not isinstance(value, dict):
            problems.add(path, "expected a table of named entries", value)
            return _UNSET
        out: dict[str, Any] = {}
        ok = True
        for name, raw in value.items():
            if re.fullmatch(self.key_pattern, name) is None:
                problems.add(_join(path, name), f"name must match {self.key_pattern}", name)
                ok = False
                continue
            parsed = self.value.parse(raw, _join(path, name), problems)
            ok = ok and parsed is not _UNSET
            out[name] = parsed
        return out if ok else _UNSET


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _suggest(word: str, options: Sequence[str] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


# --------------------------------------------------------------------------------------------------------
# Sections and loading
# --------------------------------------------------------------------------------------------------------

#: Top-level sections and where their schema lives, imported only when a file uses the section.
SECTIONS: dict[str, str] = {
    "telemetry": "buttress.telemetry.schema:SCHEMA",
    "resilience": "buttress.resilience.schema:SCHEMA",
    "cache": "buttress.cache.schema:SCHEMA",
    "slo": "buttress.slo.schema:SCHEMA",
    "quality": "buttress.quality.schema:SCHEMA",
    "demo": "buttress.demo.schema:SCHEMA",
}


def _section_schema(name: str) -> Field | None:
    target = SECTIONS.get(name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            return None  # that part is not part of this build
        raise
    schema = getattr(module, attr)
    assert isinstance(schema, Field)
    return schema


@dataclass
class Config:
    """A validated configuration: each section's checked values, and the file they came from.

    Sections that the file does not mention are filled from their schema's defaults when asked for.
    """

    sections: dict[str, Any]
    source: str | None = None

    def section(self, name: str) -> Any:
        """The checked values of section ``name`` (its defaults when the file has none)."""
        if name not in self.sections:
            schema = _section_schema(name)
            if schema is None:
                raise KeyError(f"no configuration section {name!r}")
            problems = Problems()
            value = schema.parse([] if isinstance(schema, ListOf) else {}, name, problems)
            if problems.items:
                raise ConfigError(problems.items, self.source)
            self.sections[name] = value
        return self.sections[name]

    def __contains__(self, name: object) -> bool:
        return name in self.sections


def loads(text: str, source: str | None = None, *, pyproject: bool = False) -> Config:
    """Parse and validate configuration from TOML ``text``.

    Args:
        text: the TOML document.
        source: a name for error messages (usually the file path).
        pyproject: read the ``[tool.buttress]`` table of a ``pyproject.toml`` instead of the top level.

    Raises:
        ConfigError: listing every problem found.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"not valid TOML: {exc}", has_value=False)], source) from None
    if pyproject:
        raw = raw.get("tool", {}).get("buttress", {})
        if not isinstance(raw, dict):
            raise ConfigError([ConfigProblem("tool.buttress", "expected a table", raw)], source)
    return validate(raw, source)


def validate(raw: Mapping[str, Any], source: str | None = None) -> Config:
    """Validate an already-parsed configuration mapping (e.g. built in code or in a test)."""
    problems = Problems()
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        schema = _section_schema(name)
        if schema is None:
            known = [s for s in SECTIONS if _section_schema(s) is not None]
            problems.add(name, f"unknown section; allowed: {', '.join(known)}{_suggest(name, known)}")
            continue
        parsed = schema.parse(value, name, problems)
        if parsed is not _UNSET:
            sections[name] = parsed
    if problems.items:
        raise ConfigError(problems.items, source)
    return Config(sections, source)


def find_config(start: Path | None = None) -> Path | None:
    """The configuration file that applies in ``start`` (default: the working directory).

    ``$BUTTRESS_CONFIG`` wins; otherwise the nearest ``buttress.toml``, or a ``pyproject.toml`` with a
    ``[tool.buttress]`` table, walking up from ``start``.
    """
    env = os.environ.get("BUTTRESS_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "buttress.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.buttress" in pyproject.read_text(
            encoding="utf-8", errors="replace"
        ):
            return pyproject
    return None


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a configuration file (see :func:`find_config` when ``path`` is ``None``).

    With no file anywhere, the result is the embedded defaults: an empty configuration whose sections
    come from their schemas.

    Raises:
        ConfigError: listing every problem, or saying the file could not be read.
    """
    file = Path(path) if path is not None else find_config()
    if file is None:
        return Config({}, None)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("", f"cannot read the file: {exc.strerror or exc}", has_value=False)], str(file)
        ) from None
    return loads(text, str(file), pyproject=file.name == "pyproject.toml")


_current: Config | None = None
_current_lock = threading.Lock()


def current() -> Config:
    """The configuration of this process: the one given to :func:`use`, else :func:`load`'s, loaded once."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = load()
    return _current


def use(config: Config | str | os.PathLike[str] | None) -> Config | None:
    """Make ``config`` (a :class:`Config` or a path) this process's configuration; ``None`` forgets it.

    Returns:
        The configuration that was in use before, so a test can put it back.
    """
    global _current
    with _current_lock:
        previous = _current
        _current = config if config is None or isinstance(config, Config) else load(config)
    return previous


#: ``buttress.load_config``: the public name for :func:`load`.
load_config = load


# Kept for code written against the first name.
_Problems = Problems
