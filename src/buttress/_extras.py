"""Lazy imports of optional integrations, failing with the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an ImportError that names the buttress extra providing it.

    Integrations call this inside the function or constructor that needs the library, so importing
    buttress never imports it::

        redis = require("redis", "redis")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is not installed; this feature of buttress needs the {extra!r} extra: "
            f"pip install 'buttress[{extra}]'"
        ) from exc
