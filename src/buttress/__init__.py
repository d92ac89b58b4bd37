"""buttress: resilience, caching, SLOs and quality gates for a Python service platform.

The public names are re-exported here; the modules behind them are the parts (``buttress.resilience``,
``buttress.cache``, ``buttress.slo``, ``buttress.quality``) and the foundation they stand on
(``buttress.clock``, ``buttress.config``, ``buttress.telemetry``).
"""

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
    "load_config",
]


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata only when asked for, keeping import cheap.
    if name == "__version__":
        from importlib.metadata import version

        return version("buttress")
    raise AttributeError(f"module 'buttress' has no attribute {name!r}")
