"""Named rule sets: the built-in ``default`` and ``strict``, and the ones ``buttress.toml`` declares.

``default`` is SonarQube's gate as the issue states it: coverage ≥ 90 %, complexity < 15 per function
(cyclomatic, and cognitive as Sonar's rule S3776 has it), duplication < 3 %, no high-severity security
finding and no known vulnerability — overall and on new code — and overall coverage must not fall below
the base commit's recorded figure. ``strict`` tightens it (see :data:`BUILTIN_RAW`).

A profile names a parent with ``extends`` (``"default"`` when unsaid); resolving walks the chain from the
root and lays each profile over its parent key by key. A profile declared under a built-in name is laid
over the built-in one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from buttress.errors import ConfigError, ConfigProblem
from buttress.quality.gate import METRICS, Condition

__all__ = ["BUILTIN_RAW", "Profile", "chain_problems", "resolve_profile"]

_DEFAULT_EXCLUDE = [
    "**/.*/**",
    "**/__pycache__/**",
    "**/site-packages/**",
    "**/node_modules/**",
    "build/**",
    "dist/**",
]

#: The built-in profiles, in the same form as ``[quality.profiles.<name>]`` in buttress.toml.
BUILTIN_RAW: dict[str, dict[str, Any]] = {
    "default": {
        "description": "SonarQube's gate: coverage >= 90%, complexity < 15, duplication < 3%, no high issue",
        "include": ["**/*.py"],
        "exclude": _DEFAULT_EXCLUDE,
        "measures": ["complexity", "duplication", "coverage", "security"],
        "workers": 0,
        "overall": {
            "coverage": ">= 90",
            "coverage_drop": "<= 0",
            "cyclomatic": "< 15",
            "cognitive": "< 15",
            "duplication": "< 3",
            "security_high": "== 0",
            "vulnerabilities": "== 0",
        },
        "new_code": {
            "coverage": ">= 90",
            "cyclomatic": "< 15",
            "cognitive": "< 15",
            "duplication": "< 3",
            "security_high": "== 0",
        },
        "duplication": {
            "definition": "sonar",
            "min_tokens": 100,
            "min_lines": 10,
            "normalize": ["names", "literals"],
            "exclude": [
                "**/migrations/**",
                "**/*_pb2.py",
                "**/*_pb2_grpc.py",
                "**/generated/**",
                "**/_generated/**",
            ],
        },
        "coverage": {
            "data_file": ".coverage",
            "command": ["pytest", "-q", "-p", "no:cacheprovider"],
            "min_new_lines": 20,
            "timeout": 3600.0,
        },
        "security": {
            "bandit": True,
            "confidence": "medium",
            "skip": [],
            "audit": True,
            "requirements": [],
            "service": "pypi",
            "ignore": [],
            "timeout": 120.0,
        },
    },
    "strict": {
        "extends": "default",
        "description": "default tightened: coverage >= 95%, complexity < 10, duplication < 1%, no medium",
        "overall": {
            "coverage": ">= 95",
            "cyclomatic": "< 10",
            "cognitive": "< 10",
            "duplication": "< 1",
            "security_medium": "== 0",
            "unparsed_files": "== 0",
        },
        "new_code": {
            "coverage": ">= 95",
            "cyclomatic": "< 10",
            "cognitive": "< 10",
            "duplication": "< 1",
            "security_medium": "== 0",
        },
        "security": {"confidence": "low"},
    },
}


@dataclass(frozen=True, slots=True)
class DuplicationSettings:
    """How clones are found (see :mod:`buttress.quality.duplication`).

    ``definition`` is ``"sonar"`` (SonarQube's measure) or ``"jscpd"`` (jscpd 5.3.3's tokens, clones
    and density, for figures comparable with a jscpd run; exact tokens only, so ``normalize`` is empty).
    """

    min_tokens: int = 100
    min_lines: int = 10
    normalize: tuple[str, ...] = ("names", "literals")
    exclude: tuple[str, ...] = ()
    definition: str = "sonar"


@dataclass(frozen=True, slots=True)
class CoverageSettings:
    """Where coverage data comes from, and how to produce it (see :mod:`buttress.quality.coverage`)."""

    data_file: str = ".coverage"
    command: tuple[str, ...] = ("pytest", "-q")
    min_new_lines: int = 20
    timeout: float = 3600.0


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """What the security measure runs (see :mod:`buttress.quality.security`)."""

    bandit: bool = True
    confidence: str = "medium"
    skip: tuple[str, ...] = ()
    audit: bool = True
    requirements: tuple[str, ...] = ()
    service: str = "pypi"
    index_url: str | None = None
    ignore: tuple[str, ...] = ()
    timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class Profile:
    """A resolved profile: every setting filled in, conditions as :class:`~.gate.Condition` objects.

    Attributes:
        name: the profile's name.
        chain: the profiles it was built from, root first (``("default", "strict")``).
        include: globs of files to measure.
        exclude: globs of files to leave out.
        measures: measures to run.
        conditions: every condition, overall ones first.
        duplication: clone detection settings.
        coverage: coverage settings.
        security: security settings.
        workers: processes for parsing (0: decided by the amount of source).
        description: one line saying what the profile is for.
    """

    name: str
    chain: tuple[str, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    measures: tuple[str, ...]
    conditions: tuple[Condition, ...]
    duplication: DuplicationSettings = field(default_factory=DuplicationSettings)
    coverage: CoverageSettings = field(default_factory=CoverageSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    workers: int = 0
    description: str = ""


def _validated_builtins() -> dict[str, dict[str, Any]]:
    from buttress.config import _Problems
    from buttress.quality.schema import PROFILE

    out: dict[str, dict[str, Any]] = {}
    for name, raw in BUILTIN_RAW.items():
        problems = _Problems()
        parsed = PROFILE.parse(raw, f"quality.profiles.{name}", problems)
        if problems.items:  # pragma: no cover - guarded by the test suite
            raise ConfigError(problems.items, "buttress.quality.profiles")
        out[name] = parsed
    return out


_BUILTIN: dict[str, dict[str, Any]] | None = None


def _builtins() -> dict[str, dict[str, Any]]:
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = _validated_builtins()
    return _BUILTIN


def _layers(
    name: str, user: Mapping[str, Any], seen: tuple[str, ...] = ()
) -> list[tuple[str, dict[str, Any]]]:
    """Raw profiles from the root to ``name``; raises ``KeyError``/``RecursionError`` on bad chains."""
    if name in seen:
        raise RecursionError(" -> ".join((*seen, name)))
    builtins = _builtins()
    layers: list[tuple[str, dict[str, Any]]] = []
    if name in builtins:
        parent = builtins[name].get("extends")
        if parent:
            layers = _layers(parent, {}, (*seen, name))  # built-ins extend built-ins only
        layers.append((name, builtins[name]))
        if name in user:
            layers.append((name, dict(user[name])))
        return layers
    if name not in user:
        raise KeyError(name)
    raw = user[name]
    parent = raw.get("extends") or "default"
    return [*_layers(parent, user, (*seen, name)), (name, dict(raw))]


def chain_problems(name: str, user: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with ``name``'s ``extends`` chain as ``(path suffix, message)`` (for config checks)."""
    known = sorted(set(_builtins()) | set(user))
    try:
        _layers(name, user)
    except KeyError as exc:
        return [(".extends", f"extends unknown profile {exc.args[0]!r}; known: {', '.join(known)}")]
    except RecursionError as exc:
        return [(".extends", f"profiles extend each other in a cycle: {exc.args[0]}")]
    return []


_Requirement = tuple[str, float, str] | None
_TABLES = ("duplication", "coverage", "security")


def _chain(name: str, user: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """:func:`_layers`, with a bad chain turned into a :class:`ConfigError` naming the key."""
    known = sorted(set(_builtins()) | set(user))
    try:
        return _layers(name, user)
    except KeyError as exc:
        where = "quality.profile" if exc.args[0] == name else f"quality.profiles.{name}.extends"
        problem = ConfigProblem(where, f"unknown profile; known: {', '.join(known)}", exc.args[0])
    except RecursionError as exc:
        problem = ConfigProblem(
            f"quality.profiles.{name}.extends",
            f"profiles extend each other in a cycle: {exc}",
            has_value=False,
        )
    raise ConfigError([problem])


def _merge_conditions(into: dict[tuple[str, str], _Requirement], scope: str, table: dict[str, Any]) -> None:
    """Lay one profile's ``overall`` or ``new_code`` table over the inherited conditions."""
    for metric, spec in table.items():
        if spec is not None:
            req = spec["must"]
            into[(scope, metric)] = None if req is None else (req[0], req[1], spec["severity"])


def _merge(
    layers: list[tuple[str, dict[str, Any]]],
) -> tuple[dict[str, Any], dict[tuple[str, str], _Requirement]]:
    """Every layer laid over its parent: scalars and lists replace, tables merge key by key."""
    merged: dict[str, Any] = {}
    conditions: dict[tuple[str, str], _Requirement] = {}
    for _, raw in layers:
        for key, value in raw.items():
            if value is not None and key != "extends":
                _lay(merged, conditions, key, value)
    return merged, conditions


def _lay(
    merged: dict[str, Any], conditions: dict[tuple[str, str], _Requirement], key: str, value: Any
) -> None:
    if key in ("overall", "new_code"):
        _merge_conditions(conditions, "overall" if key == "overall" else "new", value)
    elif key in _TABLES:
        merged.setdefault(key, {}).update({k: v for k, v in value.items() if v is not None})
    else:
        merged[key] = value


def _conditions(
    name: str, conditions: dict[tuple[str, str], _Requirement], measures: tuple[str, ...]
) -> tuple[Condition, ...]:
    """The conditions still switched on, overall first; each must judge a measure the profile runs."""
    out = []
    problems = []
    for (scope, metric), req in sorted(conditions.items(), key=lambda kv: (kv[0][0] != "overall", kv[0][1])):
        if req is None:
            continue
        owner = METRICS[metric].measure
        if owner not in measures and owner != "sources":
            table = "overall" if scope == "overall" else "new_code"
            problems.append(
                ConfigProblem(
                    f"quality.profiles.{name}.{table}.{metric}",
                    f"judges the {owner} measure, which this profile does not run; add it to measures or "
                    f'set {metric} = "off"',
                    has_value=False,
                )
            )
        out.append(Condition(metric, req[0], req[1], scope, req[2]))  # type: ignore[arg-type]
    if problems:
        raise ConfigError(problems)
    return tuple(out)


def _duplication(name: str, dup: dict[str, Any]) -> DuplicationSettings:
    """The duplication settings; jscpd's definition compares exact tokens, so it takes no ``normalize``.

    Raises:
        ConfigError: ``definition = "jscpd"`` with a non-empty ``normalize`` (inherited or not).
    """
    if dup["definition"] == "jscpd" and dup["normalize"]:
        raise ConfigError(
            [
                ConfigProblem(
                    f"quality.profiles.{name}.duplication.normalize",
                    'definition "jscpd" compares exact tokens, as jscpd does by default; set normalize = []'
                    " beside it (normalize is inherited from the default profile when left out)",
                    list(dup["normalize"]),
                )
            ]
        )
    return DuplicationSettings(
        dup["min_tokens"],
        dup["min_lines"],
        tuple(dup["normalize"]),
        tuple(dup["exclude"]),
        dup["definition"],
    )


def resolve_profile(name: str, user: Mapping[str, Any] | None = None) -> Profile:
    """Build profile ``name`` from the built-ins and ``user`` (``[quality.profiles]``, validated).

    Raises:
        ConfigError: the profile or a parent is unknown, the chain loops, a condition names a metric
            whose measure the profile does not run, or jscpd's definition is given names to normalise.
    """
    layers = _chain(name, user or {})
    merged, conditions = _merge(layers)
    measures = tuple(merged["measures"])
    dup, cov, sec = merged["duplication"], merged["coverage"], merged["security"]
    return Profile(
        name=name,
        chain=tuple(n for n, _ in layers),
        include=tuple(merged["include"]),
        exclude=tuple(merged["exclude"]),
        measures=measures,
        conditions=_conditions(name, conditions, measures),
        duplication=_duplication(name, dup),
        coverage=CoverageSettings(
            cov["data_file"], tuple(cov["command"]), cov["min_new_lines"], cov["timeout"]
        ),
        security=SecuritySettings(
            sec["bandit"],
            sec["confidence"],
            tuple(sec["skip"]),
            sec["audit"],
            tuple(sec["requirements"]),
            sec["service"],
            sec.get("index_url"),
            tuple(sec["ignore"]),
            sec["timeout"],
        ),
        workers=merged.get("workers", 0) or 0,
        description=merged.get("description") or "",
    )
