"""Schema fingerprints: entries written for one shape of a type are misses for another.

A namespace's key prefix carries its configured ``version`` and the fingerprint of the type it caches
(``schema=Event``), so a deploy that adds a field to ``Event`` reads none of the entries written by the
previous deploy — they are misses that reload, never unpickling errors or half-filled objects — and
nothing needs flushing: the old entries expire on their own.

The fingerprint is 10 hex digits of a BLAKE2b hash over a canonical description of the type: the names
and types of its fields, recursively for nested structured types, in declaration order. It understands
dataclasses, pydantic v1/v2 models, msgspec structs, ``TypedDict``, ``NamedTuple`` and attrs classes (all
without importing those libraries), and falls back to the qualified name for other types.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from typing import Any

__all__ = ["describe", "fingerprint"]


def fingerprint(tp: Any) -> str:
    """10 hex digits identifying the shape of ``tp``; ``""`` when ``tp`` is ``None``.

    Args:
        tp: the type stored in the namespace (a dataclass, pydantic model, msgspec struct, TypedDict, …).
    """
    if tp is None:
        return ""
    text = describe(tp)
    return hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


def describe(tp: Any, _seen: frozenset[int] = frozenset()) -> str:
    """The canonical description that :func:`fingerprint` hashes (useful to see why two differ)."""
    if id(tp) in _seen:
        return _name(tp)
    seen = _seen | {id(tp)}
    fields = _fields(tp)
    if fields is None:
        origin = typing.get_origin(tp)
        if origin is not None:
            args = ",".join(describe(a, seen) for a in typing.get_args(tp))
            return f"{_name(origin)}[{args}]"
        return _name(tp)
    inner = ",".join(f"{name}:{describe(ftp, seen)}" for name, ftp in fields)
    return f"{_name(tp)}{{{inner}}}"


def _name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp)


def _hints(tp: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(tp)
    except Exception:  # forward references that do not resolve: fall back to the raw annotations
        return dict(getattr(tp, "__annotations__", {}))


def _fields(tp: Any) -> list[tuple[str, Any]] | None:
    if not isinstance(tp, type):
        return None
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return [(f.name, hints.get(f.name, f.type)) for f in dataclasses.fields(tp)]
    model_fields = getattr(tp, "model_fields", None)  # pydantic v2
    if isinstance(model_fields, dict):
        return [(name, getattr(info, "annotation", Any)) for name, info in model_fields.items()]
    v1_fields = getattr(tp, "__fields__", None)  # pydantic v1
    if isinstance(v1_fields, dict) and hasattr(tp, "__config__"):
        return [(name, getattr(info, "outer_type_", Any)) for name, info in v1_fields.items()]
    struct_fields = getattr(tp, "__struct_fields__", None)  # msgspec.Struct
    if isinstance(struct_fields, tuple):
        hints = _hints(tp)
        return [(name, hints.get(name, Any)) for name in struct_fields]
    attrs = getattr(tp, "__attrs_attrs__", None)  # attrs
    if attrs is not None:
        return [(a.name, a.type) for a in attrs]
    if typing.is_typeddict(tp):
        hints = _hints(tp)
        required: frozenset[str] = getattr(tp, "__required_keys__", frozenset())
        return [(f"{name}{'' if name in required else '?'}", hints[name]) for name in hints]
    if issubclass(tp, tuple) and hasattr(tp, "_fields"):  # NamedTuple
        hints = _hints(tp)
        return [(name, hints.get(name, Any)) for name in tp._fields]
    return None
