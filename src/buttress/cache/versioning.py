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
from collections.abc import Callable
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


Fields = list[tuple[str, Any]]


def _fields(tp: Any) -> Fields | None:
    """``(name, type)`` of each field of a structured type, by the first reader that knows its kind."""
    if not isinstance(tp, type):
        return None
    for read in _READERS:
        fields = read(tp)
        if fields is not None:
            return fields
    return None


def _dataclass(tp: type) -> Fields | None:
    if not dataclasses.is_dataclass(tp):
        return None
    hints = _hints(tp)
    return [(f.name, hints.get(f.name, f.type)) for f in dataclasses.fields(tp)]


def _pydantic_v2(tp: type) -> Fields | None:
    model_fields = getattr(tp, "model_fields", None)
    if not isinstance(model_fields, dict):
        return None
    return [(name, getattr(info, "annotation", Any)) for name, info in model_fields.items()]


def _pydantic_v1(tp: type) -> Fields | None:
    v1_fields = getattr(tp, "__fields__", None)
    if not (isinstance(v1_fields, dict) and hasattr(tp, "__config__")):
        return None
    return [(name, getattr(info, "outer_type_", Any)) for name, info in v1_fields.items()]


def _msgspec(tp: type) -> Fields | None:
    struct_fields = getattr(tp, "__struct_fields__", None)
    if not isinstance(struct_fields, tuple):
        return None
    hints = _hints(tp)
    return [(name, hints.get(name, Any)) for name in struct_fields]


def _attrs(tp: type) -> Fields | None:
    attrs = getattr(tp, "__attrs_attrs__", None)
    if attrs is None:
        return None
    return [(a.name, a.type) for a in attrs]


def _typeddict(tp: type) -> Fields | None:
    if not typing.is_typeddict(tp):
        return None
    hints = _hints(tp)
    required: frozenset[str] = getattr(tp, "__required_keys__", frozenset())
    return [(f"{name}{'' if name in required else '?'}", hints[name]) for name in hints]


def _namedtuple(tp: type) -> Fields | None:
    if not (issubclass(tp, tuple) and hasattr(tp, "_fields")):
        return None
    hints = _hints(tp)
    return [(name, hints.get(name, Any)) for name in tp._fields]


# The first reader that answers wins: a pydantic v2 model still answers ``__fields__`` (with a
# deprecation warning), so v2 is asked before v1.
_READERS: tuple[Callable[[type], Fields | None], ...] = (
    _dataclass,
    _pydantic_v2,
    _pydantic_v1,
    _msgspec,
    _attrs,
    _typeddict,
    _namedtuple,
)
