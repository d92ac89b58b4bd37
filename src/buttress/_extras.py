"""Lazy imports of optional integrations, failing with the extra to install; objects named in config."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["import_object", "require"]


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


def import_object(spec: str, what: str) -> Any:
    """The object ``"package.module:attr"`` names (dots after the colon reach nested attributes).

    For hooks named in configuration and on command lines (warmers, dead-letter handlers, schemas).

    Args:
        spec: ``package.module:attr``.
        what: what the object is for, used in messages (``"warmer"``, ``"--handler"``).

    Raises:
        LookupError: naming ``spec`` and what is wrong — malformed, a module that does not import, a
            missing attribute. Callers turn it into their own error (a ``ConfigError``, an exit code).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise LookupError(f"{what} must look like 'package.module:function', got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r} for {what} {spec!r} ({exc})") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LookupError(f"{module_name!r} has no {attr!r} ({what} {spec!r})") from None
    return target
