"""buttress: resilience, caching, SLOs and quality gates for a Python service platform.

``buttress.policy("email")`` and ``buttress.cache("events")`` build named pipelines and cache
namespaces from ``buttress.toml``. The public names are re-exported here; the modules behind them are
the parts (``buttress.resilience``, ``buttress.cache``, ``buttress.slo``, ``buttress.quality``) and the
foundation they stand on (``buttress.clock``, ``buttress.config``, ``buttress.telemetry``).
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from buttress.clock import SYSTEM_CLOCK, Clock, SystemClock, VirtualClock
from buttress.config import Config, load_config
from buttress.errors import (
    ButtressError,
    CacheError,
    ConfigError,
    MeasureError,
    ResilienceError,
    StoreError,
)

__all__ = [
    "SYSTEM_CLOCK",
    "ButtressError",
    "CacheError",
    "Clock",
    "Config",
    "ConfigError",
    "MeasureError",
    "ResilienceError",
    "StoreError",
    "SystemClock",
    "VirtualClock",
    "__version__",
    "cache",
    "load_config",
    "policy",
]

if _TYPE_CHECKING:
    from buttress.resilience.registry import policy


def __getattr__(name: str) -> _Any:
    # Parts load on first use so `import buttress` stays cheap: `buttress.policy("email")` imports the
    # resilience part, `buttress.cache("events")` the cache part (a callable package, see its docstring).
    if name == "__version__":
        from importlib.metadata import version

        return version("buttress")
    if name == "policy":
        from buttress.resilience.registry import policy

        return policy
    if name == "cache":
        import importlib

        return importlib.import_module("buttress.cache")
    raise AttributeError(f"module 'buttress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
